// A small pool of worker threads for the control side's heavy work (parsing a zone file, opening
// and walking a GeoIP database, compiling steering), so the control event loop that runs health
// probes, the control socket and (later) the HTTP API keeps its pace while a reload runs.
//
// The control thread post()s a job; a pool thread runs it and hands `done(result)` to the owner's
// Poster, which runs it on the control loop (app/runtime.cc passes asio::post to its io_context).
// So a job's result is applied on the control thread, the only writer of snapshots, and a job
// never touches control-side state: it gets copies (or shared_ptrs to immutable data) and returns
// a value.
//
// stop() (and the destructor) refuses new jobs, drops the queued ones (their completions are never
// posted) and joins the threads, waiting for the jobs that are running: a zone parse cannot be
// interrupted half-way. A running job's completion is still handed to the Poster, whose event loop
// must outlive the pool (it may be stopped: the completion then waits in its queue and is destroyed
// with it, never run).
//
// Thread-safe: post() and stop() may be called from any thread but not from a pool thread itself
// (stop() would join the calling thread).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace meridian::core {

class WorkPool {
 public:
  using Task = std::function<void()>;
  // Runs a completion on the owner's event loop.
  using Poster = std::function<void(Task)>;

  // `threads` is clamped to at least 1.
  WorkPool(size_t threads, Poster post_back);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `job` (R job()) for a pool thread; its result goes to `done` (void done(R)) through the
  // Poster. False, and nothing runs, after stop(). An exception out of `job` is logged and its
  // completion is not posted: jobs that may fail return a Result instead.
  template <typename Job, typename Done>
  bool post(Job job, Done done) {
    return run([this, job = std::move(job), done = std::move(done)]() mutable {
      // Boxed, so a move-only result still fits in the copyable std::function the Poster takes.
      auto result = std::make_shared<decltype(job())>(job());
      post_back_([done = std::move(done), result]() mutable { done(std::move(*result)); });
    });
  }
  // Queues a task that needs no completion (e.g. dropping the last reference to a big object).
  bool run(Task task);

  void stop();
  // True once stop() has begun: no job starts after this.
  [[nodiscard]] bool stopped() const;
  // True on one of this pool's threads.
  [[nodiscard]] bool onPoolThread() const;
  [[nodiscard]] size_t size() const { return threads_.size(); }
  // Jobs finished (completion posted or not), for status and tests.
  [[nodiscard]] uint64_t completed() const;

 private:
  void work();

  Poster post_back_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  uint64_t completed_ = 0;
  std::vector<std::jthread> threads_;  // last: started once everything above exists
};

}  // namespace meridian::core
