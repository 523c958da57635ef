// Time for the health Monitor: what it reads as "now" (the probe schedule, probe deadlines, the
// wall-clock stamp of a verdict change) and the timers it waits on. The Monitor takes a Clock
// through MonitorOptions; without one it uses SteadyClock (Asio steady_timer on the control
// loop's io_context). ManualClock is time that moves only when advance() is called: tests (and
// anything else that wants a reproducible schedule) drive the Monitor's interval, start jitter,
// timeouts and rise/fall counting through it with no real waiting. Control thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace meridian::healthcheck {

// A timer on its Clock's time. The wait itself is an Asio steady_timer wait, so the Monitor's probe
// loop awaits it (alone, or raced against a probe with `||`) with no coroutine of its own between.
class Timer {
 public:
  virtual ~Timer() = default;
  // Arms the timer for `at` and returns the Asio timer to async_wait on. The wait completes when
  // the clock reaches `at`, or early on cancel() or a per-operation cancellation (the losing side
  // of `||`); reached() then tells which, given the wait's error code. One wait at a time.
  [[nodiscard]] virtual boost::asio::steady_timer& arm(
      std::chrono::steady_clock::time_point at) = 0;
  [[nodiscard]] virtual bool reached(const boost::system::error_code& ec) const = 0;
  virtual void cancel() = 0;
};

// arm(at), wait, reached(): true when the clock reached `at`, false when cancelled.
[[nodiscard]] boost::asio::awaitable<bool> waitUntil(Timer& timer,
                                                     std::chrono::steady_clock::time_point at);

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const = 0;
  // Milliseconds since the Unix epoch, for the timestamps shown to operators.
  [[nodiscard]] virtual uint64_t wallMs() const = 0;
  [[nodiscard]] virtual std::unique_ptr<Timer> makeTimer() = 0;
};

// The real clock: std::chrono::steady_clock, system_clock for wallMs, asio::steady_timer.
class SteadyClock final : public Clock {
 public:
  explicit SteadyClock(boost::asio::io_context& io) : io_(io) {}
  [[nodiscard]] TimePoint now() const override;
  [[nodiscard]] uint64_t wallMs() const override;
  [[nodiscard]] std::unique_ptr<Timer> makeTimer() override;

 private:
  boost::asio::io_context& io_;
};

// Time that stands still until advance(). Its timers park their waits on an Asio timer that
// never expires by itself; advance() ends the wait of each due timer (a cancellation that reached()
// reads as "reached"). A wait ended by per-operation cancellation leaves its timer registered until
// it is armed again, destroyed or due; being due then does nothing. Starts at an arbitrary fixed
// point (wallMs() then reads `wall_start_ms`). advance() moves time forward in steps, one per due
// timer in expiry order, and runs the io_context's ready handlers after each step, so a coroutine
// woken at one step can arm its next timer before time moves on: advancing by 10 s with a 1 s
// interval gives ten probes, each started at its exact time. Waits on other I/O (real sockets)
// still need the io_context run.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(boost::asio::io_context& io, uint64_t wall_start_ms = 1'700'000'000'000);
  ~ManualClock() override;
  [[nodiscard]] TimePoint now() const override;
  [[nodiscard]] uint64_t wallMs() const override;
  [[nodiscard]] std::unique_ptr<Timer> makeTimer() override;

  void advance(Duration by);
  // Runs the handlers that are ready now (time does not move): what advance() does between steps.
  void settle();
  // Timers currently waiting (tests check that nothing is left armed).
  [[nodiscard]] size_t waiting() const;

  struct State;  // shared with the timers, which may outlive the clock

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
};

}  // namespace meridian::healthcheck
