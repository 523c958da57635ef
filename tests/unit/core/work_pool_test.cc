// core::WorkPool (core/work_pool.h) and core::ReloadQueue (core/reload_queue.h): jobs run on pool
// threads and their completions on the loop that owns the pool; stop() waits for a running job and
// drops queued ones; reload requests made while one runs are coalesced into one more run, reports
// go out in request order, and a stale result is refused.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/reload_queue.h"
#include "core/work_pool.h"

using meridian::core::ReloadQueue;
using meridian::core::WorkPool;
namespace asio = boost::asio;

namespace {

// A pool whose completions are posted to `io`, as app/runtime.cc makes it.
std::unique_ptr<WorkPool> poolOn(asio::io_context& io, size_t threads) {
  return std::make_unique<WorkPool>(threads,
                                    [&io](WorkPool::Task t) { asio::post(io, std::move(t)); });
}

// Runs `io` until `done` is true.
void runUntil(asio::io_context& io, const bool& done) {
  auto work = asio::make_work_guard(io);
  while (!done && io.run_one() > 0) {
  }
}

}  // namespace

TEST_CASE("a pool job runs on a pool thread, its completion on the loop's thread", "[pool]") {
  asio::io_context io;
  auto pool = poolOn(io, 2);
  const std::thread::id loop = std::this_thread::get_id();
  std::thread::id job_thread, done_thread;
  bool job_on_pool = false, done_on_pool = true, done = false;
  REQUIRE(pool->post(
      [&] {
        job_thread = std::this_thread::get_id();
        job_on_pool = pool->onPoolThread();
        return std::string("parsed");
      },
      [&](std::string result) {
        done_thread = std::this_thread::get_id();
        done_on_pool = pool->onPoolThread();
        CHECK(result == "parsed");
        done = true;
      }));
  runUntil(io, done);
  REQUIRE(done);
  CHECK(job_thread != loop);
  CHECK(job_on_pool);
  CHECK(done_thread == loop);
  CHECK_FALSE(done_on_pool);
  CHECK_FALSE(pool->onPoolThread());
}

TEST_CASE("a pool of two runs two jobs at the same time", "[pool]") {
  asio::io_context io;
  auto pool = poolOn(io, 2);
  REQUIRE(pool->size() == 2);
  // Each job waits for the other to start: with one thread this would never finish.
  std::latch both(2);
  int finished = 0;
  bool done = false;
  for (int i = 0; i < 2; ++i) {
    pool->post(
        [&] {
          both.arrive_and_wait();
          return 0;
        },
        [&](int) { done = ++finished == 2; });
  }
  runUntil(io, done);
  CHECK(finished == 2);
}

TEST_CASE("a move-only result reaches the completion", "[pool]") {
  asio::io_context io;
  auto pool = poolOn(io, 1);
  bool done = false;
  pool->post([] { return std::make_unique<int>(42); },
             [&](std::unique_ptr<int> v) {
               CHECK(*v == 42);
               done = true;
             });
  runUntil(io, done);
  CHECK(done);
}

TEST_CASE("stop() waits for the running job, drops the queued ones, refuses new ones", "[pool]") {
  asio::io_context io;
  auto pool = poolOn(io, 1);
  std::promise<void> entered, release;
  auto release_f = release.get_future().share();
  std::atomic<bool> first_finished{false}, second_ran{false};
  bool first_done = false, second_done = false;
  pool->post(
      [&, release_f] {
        entered.set_value();
        release_f.wait();
        first_finished = true;
        return 1;
      },
      [&](int) { first_done = true; });
  entered.get_future().wait();
  // Queued behind the running one on the single thread; holds a reference that stop() must drop.
  auto held = std::make_shared<int>(7);
  pool->post(
      [&, held] {
        second_ran = true;
        return 2;
      },
      [&](int) { second_done = true; });
  CHECK(held.use_count() == 2);
  std::thread stopper([&] { pool->stop(); });
  while (!pool->stopped()) std::this_thread::yield();
  CHECK_FALSE(first_finished);  // still running: stop() is waiting for it
  release.set_value();
  stopper.join();
  CHECK(first_finished);
  CHECK_FALSE(second_ran);
  CHECK(held.use_count() == 1);  // the dropped job's captures are gone
  CHECK_FALSE(pool->post([] { return 3; }, [](int) {}));
  // The running job's completion was posted before the join returned; the queued one's never.
  io.poll();
  CHECK(first_done);
  CHECK_FALSE(second_done);
  pool.reset();  // a second stop() (the destructor's) is harmless
}

TEST_CASE("the pool's destructor with a job in flight joins it; its completion is never run",
          "[pool]") {
  auto completed = std::make_shared<int>(0);
  std::weak_ptr<int> watch = completed;
  {
    asio::io_context io;
    std::promise<void> entered;
    std::promise<void> release;
    auto release_f = release.get_future().share();
    auto pool = poolOn(io, 1);
    pool->post(
        [&entered, release_f] {
          entered.set_value();
          release_f.wait();
          return 1;
        },
        [completed](int) { ++*completed; });
    entered.get_future().wait();
    std::thread releaser([&release] { release.set_value(); });
    pool.reset();  // joins the job; the io_context is never run
    releaser.join();
    CHECK(*completed == 0);
  }
  // The completion (and what it captured) was destroyed with the io_context, unrun.
  CHECK(watch.use_count() == 1);
  CHECK(*completed == 0);
}

TEST_CASE("reload requests during a run are coalesced into one more run", "[pool][reload]") {
  std::vector<uint64_t> started;
  ReloadQueue<std::string> queue([&](uint64_t ticket) { started.push_back(ticket); });
  std::vector<std::string> heard;
  auto waiter = [&](const char* who) {
    return [&heard, who](const std::string& report) { heard.push_back(std::string(who) + report); };
  };
  queue.request(waiter("a:"));
  REQUIRE(started == std::vector<uint64_t>{1});
  REQUIRE(queue.running());
  queue.request(waiter("b:"));
  queue.request(waiter("c:"));
  queue.request(waiter("d:"));
  CHECK(started.size() == 1);  // nothing new starts while one runs
  CHECK(queue.queued());
  CHECK(queue.coalesced() == 2);
  REQUIRE(queue.finish(1, "r1"));
  // The first run answers only the request made before it started; one more run covers b, c, d.
  CHECK(heard == std::vector<std::string>{"a:r1"});
  REQUIRE(started == std::vector<uint64_t>{1, 2});
  CHECK_FALSE(queue.queued());
  REQUIRE(queue.finish(2, "r2"));
  CHECK(heard == std::vector<std::string>{"a:r1", "b:r2", "c:r2", "d:r2"});
  CHECK(started.size() == 2);  // four requests, two runs
  CHECK_FALSE(queue.running());
  CHECK(queue.requests() == 4);
  CHECK(queue.runs() == 2);
}

TEST_CASE("a stale reload result is refused and answers nobody", "[pool][reload]") {
  ReloadQueue<int> queue([](uint64_t) {});
  std::vector<int> heard;
  queue.request([&](const int& r) { heard.push_back(r); });
  queue.request([&](const int& r) { heard.push_back(r); });
  REQUIRE(queue.finish(1, 10));
  REQUIRE(queue.current(2));
  CHECK_FALSE(queue.current(1));
  // A late completion of run 1 (or a second one) after run 2 started: dropped.
  CHECK_FALSE(queue.finish(1, 11));
  CHECK(queue.stale() == 1);
  REQUIRE(queue.finish(2, 20));
  CHECK_FALSE(queue.finish(2, 21));  // already finished
  CHECK(queue.stale() == 2);
  CHECK(heard == std::vector<int>{10, 20});
}

TEST_CASE("a run that finishes inside its start answers its waiter and starts the queued one",
          "[pool][reload]") {
  ReloadQueue<int>* self = nullptr;
  std::vector<uint64_t> started;
  ReloadQueue<int> queue([&](uint64_t ticket) {
    started.push_back(ticket);
    if (ticket == 1) self->finish(ticket, 1);  // e.g. a configuration error found at once
  });
  self = &queue;
  int heard = 0;
  queue.request([&](const int& r) { heard = r; });
  CHECK(heard == 1);
  CHECK_FALSE(queue.running());
  queue.request();
  CHECK(started == std::vector<uint64_t>{1, 2});
}

TEST_CASE("abandon() at shutdown drops the waiters unanswered", "[pool][reload]") {
  ReloadQueue<int> queue([](uint64_t) {});
  auto held = std::make_shared<int>(0);
  int heard = 0;
  queue.request([held, &heard](const int&) { ++heard; });
  queue.request([held, &heard](const int&) { ++heard; });
  CHECK(held.use_count() == 3);
  queue.abandon();
  CHECK(held.use_count() == 1);
  CHECK_FALSE(queue.running());
  CHECK_FALSE(queue.finish(1, 1));
  CHECK(heard == 0);
}
