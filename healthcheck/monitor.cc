// Monitor internals. One coroutine per target loops probe → record → wait on the control loop. The
// Core holding targets, their states and the hot Verdicts words is shared with those coroutines, so
// a probe in flight when the Monitor goes away finishes against live memory and is then dropped.
// Each start() creates one Runner per target (its two timers and a stopped flag); stop() cancels
// the timers, which ends the waits and abandons in-flight probes (each probe races its deadline
// timer). All time is read from the Clock in MonitorOptions, and probes run through its Transport,
// so tests drive the whole schedule with a ManualClock and a fake transport.
#include "healthcheck/monitor.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "core/log.h"

namespace meridian::healthcheck {

namespace asio = boost::asio;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// RTT smoothing: new = 0.3 × sample + 0.7 × old, so a sample's weight halves in about two probes;
// one slow probe moves the estimate by less than a third of its excess.
constexpr double kRttAlpha = 0.3;

std::string endpointText(const Target& t) {
  const std::string a = t.address.to_string();
  return (t.address.is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(t.spec.port);
}

std::string rttText(uint32_t us) {
  if (us == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", us / 1000.0);
  return buf;
}

std::string plural(uint32_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// One start()..stop() period of one target's probe loop.
struct Runner {
  explicit Runner(Clock& clock) : interval(clock.makeTimer()), deadline(clock.makeTimer()) {}
  std::unique_ptr<Timer> interval;  // the wait between probes (and the start jitter)
  std::unique_ptr<Timer> deadline;  // the probe timeout
  bool stopped = false;
};

}  // namespace

class Monitor::Core {
 public:
  Core(asio::io_context& io, std::vector<Target> targets, MonitorOptions options,
       std::shared_ptr<Verdicts> verdicts)
      : io_(io),
        targets_(std::move(targets)),
        options_(std::move(options)),
        clock_(options_.clock ? options_.clock : std::make_shared<SteadyClock>(io)),
        transport_(options_.transport ? options_.transport : std::make_shared<Prober>()),
        states_(initialStates(targets_, options_, *clock_)),
        verdicts_(verdicts && verdicts->size() == targets_.size()
                      ? std::move(verdicts)
                      : std::make_shared<Verdicts>(targets_.size())) {
    for (uint32_t id = 0; id < states_.size(); ++id) (void)verdicts_->set(id, states_[id]);
  }

  static std::vector<TargetState> initialStates(const std::vector<Target>& targets,
                                                const MonitorOptions& options, const Clock& clock) {
    std::vector<TargetState> states(targets.size());
    const uint64_t now = clock.wallMs();
    for (auto& s : states) {
      s.up = options.initial_up;
      s.changed_at_ms = now;
    }
    return states;
  }

  void start(const std::shared_ptr<Core>& self) {
    if (started_) return;
    started_ = true;
    const std::vector<uint32_t> delays = startDelaysMs(targets_, options_);
    size_t checked = 0;
    for (uint32_t id = 0; id < targets_.size(); ++id) {
      if (!targets_[id].checked) continue;
      ++checked;
      const std::chrono::milliseconds delay(delays[id]);
      auto runner = std::make_shared<Runner>(*clock_);
      runners_.push_back(runner);
      asio::co_spawn(io_, run(self, runner, id, delay), asio::detached);
    }
    log::info("health: monitoring " + std::to_string(checked) + " checked targets, " +
              std::to_string(targets_.size() - checked) + " unchecked");
  }

  void stop() {
    for (auto& r : runners_) {
      r->stopped = true;
      r->interval->cancel();
      r->deadline->cancel();
    }
    runners_.clear();
    started_ = false;
  }

  [[nodiscard]] bool running() const { return started_; }

  Result<void> adoptState(uint32_t id, const TargetState& state) {
    if (id >= targets_.size()) return Error{"no health target with id " + std::to_string(id)};
    if (started_) return Error{"health: adoptState after start()"};
    states_[id] = state;
    if (!targets_[id].checked) {
      // Only the override carries over to an unchecked target: nothing measured it.
      states_[id] = TargetState{};
      states_[id].changed_at_ms = state.changed_at_ms;
      states_[id].override = state.override;
    }
    (void)verdicts_->set(id, states_[id]);
    return {};
  }

  Result<void> setOverride(uint32_t id, Override o) {
    if (id >= targets_.size()) return Error{"no health target with id " + std::to_string(id)};
    TargetState& s = states_[id];
    if (s.override == o) return {};
    const Override was = s.override;
    s.override = o;
    log::info("health: " + targets_[id].label + " override " + overrideName(o) + " (was " +
              overrideName(was) + "), " + (s.usable() ? "usable" : "not usable"));
    (void)verdicts_->set(id, s);
    notify(Event{id, &s, false, false, true});
    return {};
  }

  std::optional<uint32_t> find(std::string_view label) const {
    for (const auto& t : targets_) {
      if (t.label == label) return t.id;
    }
    return std::nullopt;
  }

  void setListener(Listener l) { listener_ = std::move(l); }
  const std::vector<TargetState>& states() const { return states_; }
  const std::shared_ptr<Verdicts>& verdicts() const { return verdicts_; }
  const std::vector<Target>& targets() const { return targets_; }
  std::string describe() const;

 private:
  static asio::awaitable<void> run(std::shared_ptr<Core> self, std::shared_ptr<Runner> runner,
                                   uint32_t id, std::chrono::milliseconds delay) {
    const Target& target = self->targets_[id];
    Clock& clock = *self->clock_;
    try {
      if (delay.count() > 0)
        (void)co_await runner->interval->arm(clock.now() + delay).async_wait(kTuple);
      while (!runner->stopped) {
        const auto started = clock.now();
        ProbeResult result = co_await self->probe(
            target, *runner->deadline, started + std::chrono::milliseconds(target.spec.timeout_ms));
        if (runner->stopped) break;
        self->record(id, result);
        // Fixed rate from the start of the probe; a probe longer than the interval is followed at
        // once by the next.
        (void)co_await runner->interval
            ->arm(started + std::chrono::milliseconds(target.spec.interval_ms))
            .async_wait(kTuple);
      }
    } catch (const std::exception& e) {
      // Probes do not throw; this would be a bug (or bad_alloc). The target keeps its verdict.
      log::error("health: " + target.label + ": probe loop ended: " + e.what());
    }
  }

  // One attempt raced against its deadline: `||` completes with whichever side finishes first and
  // cancels the other; a deadline ended by stop() (not reached) reads as "cancelled".
  asio::awaitable<ProbeResult> probe(const Target& target, Timer& deadline, Clock::TimePoint at) {
    using namespace asio::experimental::awaitable_operators;
    try {
      auto outcome = co_await (transport_->attempt(target.spec, target.address) ||
                               deadline.arm(at).async_wait(kTuple));
      if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
      if (!deadline.reached(std::get<0>(std::get<1>(outcome)))) {
        co_return ProbeResult{false, 0, "cancelled"};
      }
      co_return ProbeResult{false, 0,
                            "timeout after " + std::to_string(target.spec.timeout_ms) + " ms"};
    } catch (const std::exception& e) {
      co_return ProbeResult{false, 0, std::string("internal error: ") + e.what()};
    }
  }

  void record(uint32_t id, const ProbeResult& r) {
    const Target& target = targets_[id];
    TargetState& s = states_[id];
    ++s.probes;
    bool changed = false;
    if (r.ok) {
      const uint32_t sample = std::max<uint32_t>(r.rtt_us, 1);
      s.rtt_us =
          s.rtt_us == 0
              ? sample
              : static_cast<uint32_t>(std::lround(kRttAlpha * sample + (1 - kRttAlpha) * s.rtt_us));
      if (s.up) {
        ++s.consecutive;
        s.opposing = 0;
      } else {
        s.consecutive = 0;
        if (++s.opposing >= target.spec.rise) changed = true;
      }
    } else {
      ++s.failures;
      s.last_error = r.error;
      if (!s.up) {
        ++s.consecutive;
        s.opposing = 0;
      } else {
        s.consecutive = 0;
        if (++s.opposing >= target.spec.fall) changed = true;
        if (!changed) {
          log::debug("health: " + target.label + " probe failed (" + std::to_string(s.opposing) +
                     "/" + std::to_string(target.spec.fall) + "): " + r.error);
        }
      }
    }
    if (changed) {
      s.up = !s.up;
      s.consecutive = s.opposing;
      s.opposing = 0;
      s.changed_at_ms = clock_->wallMs();
      std::string line = "health: " + target.label + (s.up ? " UP after " : " DOWN after ") +
                         (s.up ? plural(s.consecutive, "success", "successes")
                               : plural(s.consecutive, "failure", "failures"));
      line += s.up ? " (rtt " + rttText(r.rtt_us) + ")" : ": " + r.error;
      if (s.override != Override::kNone) {
        line += std::string("; override ") + overrideName(s.override) + " still in effect";
      }
      log::info(line);
    }
    // The workers see this probe only if it moved the verdict or the RTT bucket: one word.
    (void)verdicts_->set(id, s);
    notify(Event{id, &s, changed, r.ok, false});
  }

  void notify(const Event& e) {
    if (!listener_) return;
    try {
      listener_(e);
    } catch (const std::exception& ex) {
      log::error(std::string("health: listener failed: ") + ex.what());
    }
  }

  asio::io_context& io_;
  std::vector<Target> targets_;
  MonitorOptions options_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<Transport> transport_;
  std::vector<TargetState> states_;     // the control side's view, with counters and errors
  std::shared_ptr<Verdicts> verdicts_;  // the hot words the workers read (see state.h)
  Listener listener_;
  std::vector<std::shared_ptr<Runner>> runners_;
  bool started_ = false;
};

std::vector<uint32_t> startDelaysMs(const std::vector<Target>& targets,
                                    const MonitorOptions& options) {
  // mt19937_64 and a modulo rather than a std:: distribution: the sequence of a given seed is then
  // the same with every standard library.
  std::mt19937_64 rng(options.seed);
  std::vector<uint32_t> delays;
  delays.reserve(targets.size());
  for (const auto& t : targets) {
    // One draw per target whatever its range, so a target's delay depends only on seed and order.
    const uint64_t draw = rng();
    const uint64_t range = std::min(options.max_start_jitter_ms, t.spec.interval_ms);
    delays.push_back(range == 0 ? 0 : static_cast<uint32_t>(draw % range));
  }
  return delays;
}

std::string Monitor::Core::describe() const {
  if (targets_.empty()) return "no health checks configured\n";
  const std::vector<std::string> header = {"ID",      "TARGET",        "ADDRESS",   "CHECK",
                                           "VERDICT", "OVERRIDE",      "USABLE",    "RTT",
                                           "STREAK",  "PROBES/FAILED", "LAST ERROR"};
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& t : targets_) {
    const TargetState& s = states_[t.id];
    std::string streak = "-";
    if (s.opposing > 0) {
      streak = s.up ? std::to_string(s.opposing) + "/" + std::to_string(t.spec.fall) + " failed"
                    : std::to_string(s.opposing) + "/" + std::to_string(t.spec.rise) + " ok";
    } else if (s.consecutive > 0) {
      streak = std::to_string(s.consecutive) + (s.up ? " ok" : " failed");
    }
    if (!t.checked) {
      rows.push_back({std::to_string(t.id), t.label,
                      t.address.is_unspecified() ? "-" : t.address.to_string(), "unchecked", "up",
                      overrideName(s.override), s.usable() ? "yes" : "no", "-", "-", "-", "-"});
      continue;
    }
    rows.push_back({std::to_string(t.id), t.label, endpointText(t), describeCheck(t.spec),
                    s.up ? "up" : "down", overrideName(s.override), s.usable() ? "yes" : "no",
                    rttText(s.rtt_us), streak,
                    std::to_string(s.probes) + "/" + std::to_string(s.failures),
                    s.last_error.empty() ? "-" : s.last_error});
  }
  return alignColumns(rows);
}

Monitor::Monitor(asio::io_context& io, std::vector<Target> targets, MonitorOptions options,
                 std::shared_ptr<Verdicts> verdicts) {
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].id != i) {
      throw std::invalid_argument("health target '" + targets[i].label + "' has id " +
                                  std::to_string(targets[i].id) + ", expected " +
                                  std::to_string(i));
    }
    if (!targets[i].checked) continue;
    if (auto valid = validateCheck(targets[i].spec); !valid) {
      throw std::invalid_argument("health target '" + targets[i].label +
                                  "': " + valid.error().message);
    }
  }
  core_ = std::make_shared<Core>(io, std::move(targets), options, std::move(verdicts));
}

Monitor::~Monitor() {
  stop();
}

void Monitor::start() {
  core_->start(core_);
}
void Monitor::stop() {
  core_->stop();
}
bool Monitor::running() const {
  return core_->running();
}
Result<void> Monitor::setOverride(uint32_t id, Override o) {
  return core_->setOverride(id, o);
}
Result<void> Monitor::adoptState(uint32_t id, const TargetState& state) {
  return core_->adoptState(id, state);
}
std::optional<uint32_t> Monitor::find(std::string_view label) const {
  return core_->find(label);
}
void Monitor::setListener(Listener listener) {
  core_->setListener(std::move(listener));
}
const std::vector<TargetState>& Monitor::states() const {
  return core_->states();
}
const std::shared_ptr<Verdicts>& Monitor::verdicts() const {
  return core_->verdicts();
}
const std::vector<Target>& Monitor::targets() const {
  return core_->targets();
}
std::string alignColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

std::string Monitor::describe() const {
  return core_->describe();
}

}  // namespace meridian::healthcheck
