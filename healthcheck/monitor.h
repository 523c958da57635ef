// The Monitor runs every target's check on the control loop, turns probe results into up/down
// verdicts with rise/fall anti-flap, smooths RTTs, applies operator overrides, and keeps the
// per-target TargetState (state.h) on the control side. What DNS workers read is the packed
// Verdicts array (state.h): the Monitor stores a target's word only when its verdict, override or
// RTT bucket changes. Owned by the runtime (app/); all methods
// are called on the thread that runs the io_context (or while it is not running), never from DNS
// workers.
//
// Unchecked targets (Target::checked false) are never probed and stay up; they exist so that
// overrides reach endpoints without a check.
//
// Initial state: a target starts UP (MonitorOptions::initial_up), as gdnsd and Route 53 do: until a
// check has proven it down, a freshly started server answers as configured instead of failing over
// everything at once. It goes DOWN after `fall` consecutive failures and back UP after `rise`
// consecutive successes; a single result in the other direction resets the count.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "healthcheck/clock.h"
#include "healthcheck/prober.h"
#include "healthcheck/state.h"

namespace meridian::healthcheck {

struct Target {
  uint32_t id = 0;    // index in the StateTable; targets are numbered 0..n-1 in order
  std::string label;  // for logs and describe(), e.g. "eu-web/192.0.2.10"
  boost::asio::ip::address address;
  CheckSpec spec;
  // false: an endpoint without a health check. It has a slot so that operators can override it
  // (drain, force-down a region or pool), but is never probed: up unless an override says not.
  bool checked = true;
};

struct MonitorOptions {
  bool initial_up = true;
  // Each target's first probe is delayed by a pseudo-random 0..min(this, interval) ms so that many
  // targets on the same interval do not probe in lockstep; 0 probes all at once. The delays come
  // from `seed` in target order, so a given seed always gives the same schedule.
  uint32_t max_start_jitter_ms = 1000;
  uint64_t seed = 1;
  // Where time comes from (schedule, timeouts, verdict timestamps); null: a SteadyClock on the
  // Monitor's io_context. Tests pass a ManualClock.
  std::shared_ptr<Clock> clock;
  // What runs each probe; null: a Prober (real sockets). Tests pass a scripted fake.
  std::shared_ptr<Transport> transport;
};

// Each target's first-probe delay for `options` (what start() uses), in target order.
[[nodiscard]] std::vector<uint32_t> startDelaysMs(const std::vector<Target>& targets,
                                                  const MonitorOptions& options);

// Reported after each probe result and override, once the hot words are stored.
struct Event {
  uint32_t id = 0;
  const TargetState* state = nullptr;  // valid during the call only
  bool verdict_changed = false;        // up/down flipped by this probe
  bool probe_ok = false;               // the result of this probe (false for override events)
  bool from_override = false;
};
using Listener = std::function<void(const Event&)>;

class Monitor {
 public:
  // Throws std::invalid_argument when ids are not 0..n-1 in order or a check fails validateCheck:
  // configuration errors are meant to be caught by the loader first.
  // `verdicts` (optional) is the hot array to write, sized for `targets`: the runtime allocates it
  // so it can publish it with the services compiled against the same targets. Otherwise (or when
  // its size differs) the Monitor makes its own. Either way it is reset to the initial states.
  Monitor(boost::asio::io_context& io, std::vector<Target> targets, MonitorOptions options = {},
          std::shared_ptr<Verdicts> verdicts = nullptr);
  ~Monitor();  // stop()
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Schedules every target's probes (first one after its start jitter, then every interval_ms,
  // measured from the start of the previous probe). Calling start() while running does nothing.
  void start();
  // Cancels the schedule and abandons probes in flight; verdicts are kept. start() may follow.
  void stop();
  [[nodiscard]] bool running() const;

  // Overrides are applied and published at once, and logged.
  [[nodiscard]] Result<void> setOverride(uint32_t id, Override o);
  // Takes over a target's state (verdict, override, RTT, counters) from a previous Monitor, so a
  // reload that rebuilds the Monitor does not forget what the checks found: a target that was
  // down stays down until it passes `rise` probes. Before start() only; its word is stored at once.
  [[nodiscard]] Result<void> adoptState(uint32_t id, const TargetState& state);
  [[nodiscard]] std::optional<uint32_t> find(std::string_view label) const;

  // Called on the control thread after each probe result and override (for the API's event
  // stream, and tests).
  void setListener(Listener listener);

  // Control thread: every target's full state (counters, last error), by id.
  [[nodiscard]] const std::vector<TargetState>& states() const;
  // The hot words the workers read (shared with the serving snapshot that holds them).
  [[nodiscard]] const std::shared_ptr<Verdicts>& verdicts() const;
  [[nodiscard]] const std::vector<Target>& targets() const;

  // One line per target for `meridianctl health`: id, label, address:port, check, verdict,
  // override, usable, smoothed RTT, streak, probes/failures, last error.
  [[nodiscard]] std::string describe() const;

 private:
  class Core;
  std::shared_ptr<Core> core_;  // shared with the probe coroutines, which may outlive a stop()
};

// Rows of cells as describe() prints them: each column padded to its widest cell plus two spaces
// (the last column unpadded), one line per row.
[[nodiscard]] std::string alignColumns(const std::vector<std::vector<std::string>>& rows);

}  // namespace meridian::healthcheck
