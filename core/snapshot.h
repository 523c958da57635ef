// Publication of immutable snapshots from the control thread to data-plane threads, with retirement
// of old snapshots on the control side (quiescent-state-based reclamation, as Knot does with
// userspace RCU).
//
// The control thread (the only writer) calls Published<T>::publish(): one atomic pointer swap, then
// the old snapshot is handed to the QuiescentDomain with the epoch that the swap started. Workers
// read the current pointer with one acquire load (Reader::get()) and take no lock and no reference
// count; the pointer stays valid until that worker's next quiescent point. Each worker holds a
// QuiescentDomain::Slot and calls quiescent() where it holds no snapshot: at the top of each batch
// of queries and from a periodic timer on its event loop, so an idle worker passes quiescent points
// too. The control thread calls QuiescentDomain::reclaim() (after each publish and from a timer);
// it frees a retired snapshot once every registered worker has passed a quiescent point after it
// was retired. So a zone set is destroyed, or a GeoIP file unmapped, only on the control thread,
// never inside a query, and no worker pins an old snapshot.
//
// Nothing may keep a pointer into a snapshot across its thread's quiescent point (a query parked
// for later, when there are such, holds what it needs by value or re-reads on resumption).
//
// A thread that reads without a Slot (tests that drive a QueryHandler on the control thread itself)
// is not waited for: it must not hold a snapshot across the writer's publish() and reclaim().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace meridian {

class QuiescentDomain {
 public:
  // One per reader thread; cache-line sized so workers do not share a line.
  struct alignas(64) Slot {
    // The epoch this reader saw at its last quiescent point; kOffline when not registered.
    std::atomic<uint64_t> seen{kOffline};
  };
  static constexpr uint64_t kOffline = ~uint64_t{0};
  // More worker threads than any machine this runs on has cores; fixed so the slots never move.
  static constexpr size_t kMaxSlots = 256;

  QuiescentDomain() = default;
  QuiescentDomain(const QuiescentDomain&) = delete;
  QuiescentDomain& operator=(const QuiescentDomain&) = delete;
  // Frees whatever is still retired (readers are gone by then).
  ~QuiescentDomain();

  // The domain every Published<> uses unless given another.
  static QuiescentDomain& global();

  // Reader side. enter() registers the calling worker (nullptr when kMaxSlots are taken: the
  // worker then must not start); leave() unregisters it, after which it holds no snapshot.
  [[nodiscard]] Slot* enter();
  void leave(Slot* slot);
  // Hot path: the reader holds no snapshot at this point. One load and one store.
  void quiescent(Slot& slot) const {
    slot.seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_release);
  }

  // Writer side (control thread only).
  // Keeps `old` alive until every registered reader has passed a quiescent point after this call.
  void retire(std::shared_ptr<const void> old);
  // Frees what every reader has moved past; returns how many snapshots are still waiting.
  size_t reclaim();
  [[nodiscard]] size_t pending() const;
  [[nodiscard]] uint64_t freed() const { return freed_.load(std::memory_order_relaxed); }

 private:
  // The smallest epoch seen by a registered reader (kOffline when none is registered).
  [[nodiscard]] uint64_t oldestSeen() const;

  std::atomic<uint64_t> epoch_{1};
  Slot slots_[kMaxSlots];
  // Registration and reclamation scans are serialised, so a reader that registers after a scan
  // has read an epoch past everything that scan freed. Never taken on the query path.
  mutable std::mutex mutex_;
  struct Retired {
    std::shared_ptr<const void> object;
    uint64_t epoch;  // freed once every reader has seen this epoch
  };
  std::vector<Retired> retired_;
  std::atomic<uint64_t> freed_{0};
};

template <typename T>
class Published {
 public:
  explicit Published(std::shared_ptr<const T> initial,
                     QuiescentDomain& domain = QuiescentDomain::global())
      : domain_(&domain), owner_(std::move(initial)), current_(owner_.get()) {}
  ~Published() {
    // Readers are stopped before what they read (Server before Runtime's snapshots).
    if (owner_) domain_->retire(std::move(owner_));
    domain_->reclaim();
  }
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  // Control thread. The previous snapshot is retired, not freed: it goes when every worker has
  // moved past it (QuiescentDomain::reclaim, which this calls once right away).
  void publish(std::shared_ptr<const T> next) {
    std::shared_ptr<const T> old = std::move(owner_);
    owner_ = std::move(next);
    current_.store(owner_.get(), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
    if (old) domain_->retire(std::move(old));
    domain_->reclaim();
  }

  // Control thread only: the current snapshot with its ownership.
  [[nodiscard]] std::shared_ptr<const T> load() const { return owner_; }
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  [[nodiscard]] QuiescentDomain& domain() const { return *domain_; }

  // A worker's view: one acquire load per get(), no lock, no reference count. What get() returns
  // is valid until the worker's next quiescent point (or, on the writer's thread, the next
  // publish()).
  class Reader {
   public:
    explicit Reader(const Published& source) : source_(&source) {}
    const T& get() const { return *source_->current_.load(std::memory_order_acquire); }

   private:
    const Published* source_;
  };

 private:
  QuiescentDomain* domain_;
  std::shared_ptr<const T> owner_;  // written and read on the control thread only
  std::atomic<const T*> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace meridian
