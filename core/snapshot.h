// Publication of immutable snapshots from the control thread to data-plane threads.
//
// The control thread (the only writer) calls publish(); each worker keeps a Reader with its own
// shared_ptr copy and a generation number. Per query, Reader::get() does one relaxed atomic load of
// the generation; only when it changed (after a reload) does the worker take the mutex to copy the
// new pointer. So the hot path takes no lock and touches no shared reference count, in the manner
// of dnsdist's per-thread cached configuration. An old snapshot is freed when the last worker has
// moved on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace meridian {

template <typename T>
class Published {
 public:
  explicit Published(std::shared_ptr<const T> initial) : current_(std::move(initial)) {}

  void publish(std::shared_ptr<const T> next) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current_ = std::move(next);
    }
    generation_.fetch_add(1, std::memory_order_release);
  }

  [[nodiscard]] std::shared_ptr<const T> load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }

  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // A worker's cached view.
  class Reader {
   public:
    explicit Reader(const Published& source)
        : source_(&source), generation_(source.generation()), cached_(source.load()) {}

    // Returns the newest snapshot; cheap when nothing changed.
    const T& get() {
      const uint64_t g = source_->generation();
      if (g != generation_) {
        cached_ = source_->load();
        generation_ = g;
      }
      return *cached_;
    }

   private:
    const Published* source_;
    uint64_t generation_;
    std::shared_ptr<const T> cached_;
  };

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace meridian
