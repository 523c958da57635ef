// SteadyClock and ManualClock (clock.h). A ManualClock timer parks its waiter on an Asio timer that
// never expires by itself: advance() wakes it by cancelling that wait after marking it fired, so
// the waiter resumes through the io_context like any other completion, and a per-operation
// cancellation (the losing side of `||`) ends it the same way, "not fired".
#include "healthcheck/clock.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

namespace meridian::healthcheck {

namespace asio = boost::asio;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

class SteadyTimer final : public Timer {
 public:
  explicit SteadyTimer(asio::io_context& io) : timer_(io) {}
  asio::steady_timer& arm(std::chrono::steady_clock::time_point at) override {
    timer_.expires_at(at);
    return timer_;
  }
  [[nodiscard]] bool reached(const boost::system::error_code& ec) const override { return !ec; }
  void cancel() override { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

class ManualTimer;

}  // namespace

struct ManualClock::State {
  // An arbitrary point well after the clock's epoch, so that "now - interval" stays meaningful.
  Clock::TimePoint now = Clock::TimePoint{} + std::chrono::hours(24);
  Clock::TimePoint start = now;
  uint64_t wall_start_ms = 0;
  std::vector<ManualTimer*> waiting;  // in the order the waits began
};

namespace {

class ManualTimer final : public Timer {
 public:
  ManualTimer(asio::io_context& io, std::shared_ptr<ManualClock::State> state)
      : wake_(io), state_(std::move(state)) {}
  ~ManualTimer() override { forget(); }

  asio::steady_timer& arm(std::chrono::steady_clock::time_point at) override {
    forget();
    at_ = at;
    fired_ = at <= state_->now;
    if (fired_) {
      wake_.expires_at(asio::steady_timer::time_point::min());  // completes at once
    } else {
      state_->waiting.push_back(this);
      wake_.expires_at(asio::steady_timer::time_point::max());
    }
    return wake_;
  }
  [[nodiscard]] bool reached(const boost::system::error_code& /*ec*/) const override {
    return fired_;
  }
  void cancel() override {
    fired_ = false;
    forget();
    wake_.cancel();
  }

  [[nodiscard]] Clock::TimePoint at() const { return at_; }
  void fire() {
    fired_ = true;
    forget();
    wake_.cancel();
  }

 private:
  void forget() { std::erase(state_->waiting, this); }

  asio::steady_timer wake_;
  std::shared_ptr<ManualClock::State> state_;
  Clock::TimePoint at_{};
  bool fired_ = false;
};

}  // namespace

asio::awaitable<bool> waitUntil(Timer& timer, std::chrono::steady_clock::time_point at) {
  const auto [ec] = co_await timer.arm(at).async_wait(kTuple);
  co_return timer.reached(ec);
}

Clock::TimePoint SteadyClock::now() const {
  return std::chrono::steady_clock::now();
}

uint64_t SteadyClock::wallMs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::unique_ptr<Timer> SteadyClock::makeTimer() {
  return std::make_unique<SteadyTimer>(io_);
}

ManualClock::ManualClock(asio::io_context& io, uint64_t wall_start_ms)
    : io_(io), state_(std::make_shared<State>()) {
  state_->wall_start_ms = wall_start_ms;
}

ManualClock::~ManualClock() = default;

Clock::TimePoint ManualClock::now() const {
  return state_->now;
}

uint64_t ManualClock::wallMs() const {
  return state_->wall_start_ms +
         static_cast<uint64_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(state_->now - state_->start)
                 .count());
}

std::unique_ptr<Timer> ManualClock::makeTimer() {
  return std::make_unique<ManualTimer>(io_, state_);
}

void ManualClock::settle() {
  // poll() stops the io_context when it runs out of work; restart so the next call runs again.
  do {
    io_.restart();
  } while (io_.poll() > 0);
}

void ManualClock::advance(Duration by) {
  const TimePoint end = state_->now + by;
  settle();
  for (;;) {
    const auto next = std::min_element(
        state_->waiting.begin(), state_->waiting.end(),
        [](const ManualTimer* a, const ManualTimer* b) { return a->at() < b->at(); });
    if (next == state_->waiting.end() || (*next)->at() > end) break;
    state_->now = std::max(state_->now, (*next)->at());
    // Every timer due at this instant, in the order their waits began.
    std::vector<ManualTimer*> due;
    for (ManualTimer* t : state_->waiting) {
      if (t->at() <= state_->now) due.push_back(t);
    }
    for (ManualTimer* t : due) t->fire();
    settle();
  }
  state_->now = end;
  settle();
}

size_t ManualClock::waiting() const {
  return state_->waiting.size();
}

}  // namespace meridian::healthcheck
