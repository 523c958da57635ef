// The published health state: one entry per monitored target (an endpoint address checked by one
// check), indexed by the integer target id assigned when the configuration is compiled. Written
// only by the control thread's Monitor (monitor.h), read lock-free by DNS workers through
// Published<StateTable> (core/snapshot.h); georoute reads it by index, never by name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace meridian::healthcheck {

// Administrative override of what the checks say (operator action through meridianctl / the API).
enum class Override : uint8_t {
  kNone = 0,   // follow the checks
  kForceUp,    // always up
  kForceDown,  // always down
  kDrain,      // not handed out to new clients, but kept up for fail-open purposes
};

struct TargetState {
  bool up = true;  // the verdict of the checks after rise/fall (anti-flap)
  Override override = Override::kNone;
  uint32_t rtt_us = 0;         // smoothed RTT (EWMA) of successful probes; 0 = none measured yet
  uint32_t consecutive = 0;    // successes (if up) or failures (if down) in a row
  uint32_t opposing = 0;       // results in a row against the verdict (failures while up, successes
                               // while down); the verdict turns when this reaches fall (or rise)
  uint64_t changed_at_ms = 0;  // wall clock (ms since the epoch) of the last verdict change
  uint64_t probes = 0;         // probes completed since the Monitor was created
  uint64_t failures = 0;       // of which failed
  std::string last_error;      // of the latest failed probe; kept after recovery

  // What steering uses: override first, then the checks.
  [[nodiscard]] bool usable() const {
    switch (override) {
      case Override::kForceUp:
        return true;
      case Override::kForceDown:
        return false;
      case Override::kDrain:
        return false;
      case Override::kNone:
        return up;
    }
    return up;
  }
};

struct StateTable {
  std::vector<TargetState> targets;  // by target id
  uint64_t generation = 0;

  [[nodiscard]] bool usable(uint32_t id) const {
    return id >= targets.size() || targets[id].usable();
  }
  [[nodiscard]] uint32_t rttUs(uint32_t id) const {
    return id < targets.size() ? targets[id].rtt_us : 0;
  }
};

[[nodiscard]] const char* overrideName(Override o);

}  // namespace meridian::healthcheck
