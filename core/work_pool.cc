#include "core/work_pool.h"

#include <exception>
#include <string>

#include "core/log.h"

namespace meridian::core {

namespace {
// The pool the current thread belongs to, for onPoolThread().
thread_local const WorkPool* t_pool = nullptr;
}  // namespace

WorkPool::WorkPool(size_t threads, Poster post_back) : post_back_(std::move(post_back)) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

WorkPool::~WorkPool() {
  stop();
}

bool WorkPool::run(Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void WorkPool::stop() {
  std::deque<Task> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  // What the queued jobs captured is destroyed here, on the caller's thread, after the join.
}

bool WorkPool::stopped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

bool WorkPool::onPoolThread() const {
  return t_pool == this;
}

uint64_t WorkPool::completed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_;
}

void WorkPool::work() {
  t_pool = this;
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left that was taken before stop()
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      log::error(std::string("work pool: job failed: ") + e.what());
    } catch (...) {
      log::error("work pool: job failed");
    }
    // Whatever the job still held goes here, on the pool thread.
    task = nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    ++completed_;
  }
}

}  // namespace meridian::core
