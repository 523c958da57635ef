// Health state, in two parts, both indexed by the integer target id assigned when the
// configuration is compiled (georoute reads by index, never by name):
//  - TargetState / StateTable: everything the control side knows about a target (counters, streaks,
//    the last error string). Kept by the Monitor (monitor.h) on the control thread; never read on
//    the query path.
//  - Verdicts: the hot part steering reads per query, one packed 32-bit word per target (usable,
//    up, override, RTT bucket). The array is allocated once per target layout and travels in the
//    serving snapshot beside the services compiled against it (server::ServingState), so a health
//    id always indexes the table it was compiled for. The Monitor stores a target's word only when
//    it changes: a verdict flips, an override is set, or the smoothed RTT moves to another bucket.
//    Workers read a word with one relaxed atomic load: no lock, no reference count, no copy.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
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

// The hot per-target words. Not copyable (atomics); the control thread writes, workers read.
class Verdicts {
 public:
  // RTTs above this (about 16.8 s, beyond any probe timeout) are stored as this.
  static constexpr uint32_t kMaxRttUs = (1u << 24) - 1;

  Verdicts() = default;  // no targets: every id counts as usable, no RTT
  // n targets, each up with no override and no RTT measured.
  explicit Verdicts(size_t n);
  // The words of `table` (tests, offline explain); allocates, never on the query path.
  Verdicts(const StateTable& table);  // NOLINT(google-explicit-constructor): tests pass tables
  Verdicts(const Verdicts&) = delete;
  Verdicts& operator=(const Verdicts&) = delete;

  [[nodiscard]] size_t size() const { return size_; }
  // Query path. An id past the end (a table built without that target) counts as usable; the
  // runtime publishes each table with the services it was sized for, so that does not happen.
  [[nodiscard]] bool usable(uint32_t id) const {
    return id >= size_ || (word(id) & kUsableBit) != 0;
  }
  // The smoothed RTT rounded down to its bucket (see rttBucket); 0 = none measured.
  [[nodiscard]] uint32_t rttUs(uint32_t id) const { return id < size_ ? word(id) & kRttMask : 0; }
  [[nodiscard]] bool up(uint32_t id) const { return id >= size_ || (word(id) & kUpBit) != 0; }

  // Control thread: stores the word for `s`; true when it changed (a publication).
  bool set(uint32_t id, const TargetState& s);
  // How many set() calls changed a word since construction (for tests and the bench).
  [[nodiscard]] uint64_t stores() const { return stores_; }

  [[nodiscard]] static uint32_t pack(const TargetState& s);
  // An RTT kept to its 5 most significant bits (buckets about 3-6 % wide): the smoothed RTT of a
  // steady target wanders within a bucket without being republished, and the latency policy still
  // tells 5 ms from 60 ms from 150 ms apart.
  [[nodiscard]] static uint32_t rttBucket(uint32_t rtt_us);

 private:
  static constexpr uint32_t kRttMask = kMaxRttUs;
  static constexpr uint32_t kUpBit = 1u << 24;
  static constexpr uint32_t kUsableBit = 1u << 25;
  static constexpr int kOverrideShift = 26;  // two bits

  [[nodiscard]] uint32_t word(uint32_t id) const {
    return words_[id].load(std::memory_order_relaxed);
  }

  size_t size_ = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> words_;
  uint64_t stores_ = 0;  // control thread only
};

[[nodiscard]] const char* overrideName(Override o);

}  // namespace meridian::healthcheck
