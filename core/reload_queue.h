// Reload requests as an operator of Knot or PowerDNS expects them, on the control thread: one
// reload runs at a time; a request that arrives while one runs is coalesced into the single run
// queued behind it (however many arrive, one more run, which sees every change they asked for);
// runs, and so their results, go in request order; each requester hears the report of the first
// run that started after its request.
//
// A run is started by the `start` callback with a ticket and ends, later, when its owner calls
// finish(ticket, report) (typically from a WorkPool completion). A result whose ticket is not the
// running one is stale (a newer run has finished, or it was already finished) and is dropped:
// finish() returns false and its owner must not apply it. Control thread only; no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace meridian::core {

template <typename Report>
class ReloadQueue {
 public:
  using Waiter = std::function<void(const Report&)>;
  using Start = std::function<void(uint64_t ticket)>;

  explicit ReloadQueue(Start start) : start_(std::move(start)) {}

  // Asks for a run; `waiter` (may be empty) gets the report of the run that covers this request.
  void request(Waiter waiter = {}) {
    ++requests_;
    if (waiter) queued_.push_back(std::move(waiter));
    if (running_ != 0) {
      // Coalesced: the queued run covers this request too.
      if (again_) ++coalesced_;
      again_ = true;
      return;
    }
    begin();
  }

  // True when `ticket` is the running run: its result may be applied.
  [[nodiscard]] bool current(uint64_t ticket) const { return ticket != 0 && ticket == running_; }

  // Ends the running run: its waiters get `report`, then the queued run (if any) starts. A stale
  // ticket changes nothing and returns false.
  bool finish(uint64_t ticket, const Report& report) {
    if (!current(ticket)) {
      ++stale_;
      return false;
    }
    running_ = 0;
    ++finished_;
    std::vector<Waiter> waiters = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiters) w(report);
    if (again_ && running_ == 0) begin();
    return true;
  }

  // Shutdown: forgets the running and the queued run; their waiters are dropped unanswered (what
  // they hold, e.g. a client's connection, is released).
  void abandon() {
    running_ = 0;
    again_ = false;
    waiting_.clear();
    queued_.clear();
  }

  [[nodiscard]] bool running() const { return running_ != 0; }
  [[nodiscard]] bool queued() const { return again_; }
  [[nodiscard]] uint64_t requests() const { return requests_; }
  [[nodiscard]] uint64_t runs() const { return next_ticket_ - 1; }
  [[nodiscard]] uint64_t finished() const { return finished_; }
  // Requests that joined an already queued run (the first one behind a running run is not counted).
  [[nodiscard]] uint64_t coalesced() const { return coalesced_; }
  [[nodiscard]] uint64_t stale() const { return stale_; }

 private:
  void begin() {
    again_ = false;
    running_ = next_ticket_++;
    waiting_ = std::move(queued_);
    queued_.clear();
    // May call finish() before it returns (a run with nothing to wait for).
    start_(running_);
  }

  Start start_;
  uint64_t next_ticket_ = 1;
  uint64_t running_ = 0;  // 0: none
  bool again_ = false;
  std::vector<Waiter> waiting_;  // of the running run
  std::vector<Waiter> queued_;   // of the queued run
  uint64_t requests_ = 0, finished_ = 0, coalesced_ = 0, stale_ = 0;
};

}  // namespace meridian::core
