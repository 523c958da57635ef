#include "healthcheck/state.h"

#include <algorithm>
#include <bit>

namespace meridian::healthcheck {

Verdicts::Verdicts(size_t n) : size_(n), words_(std::make_unique<std::atomic<uint32_t>[]>(n)) {
  const uint32_t initial = pack(TargetState{});
  for (size_t i = 0; i < n; ++i) words_[i].store(initial, std::memory_order_relaxed);
}

Verdicts::Verdicts(const StateTable& table) : Verdicts(table.targets.size()) {
  for (size_t i = 0; i < table.targets.size(); ++i) {
    words_[i].store(pack(table.targets[i]), std::memory_order_relaxed);
  }
}

uint32_t Verdicts::rttBucket(uint32_t rtt_us) {
  const uint32_t v = std::min(rtt_us, kMaxRttUs);
  const int width = std::bit_width(v);
  if (width <= 5) return v;
  return v & ~((1u << (width - 5)) - 1);
}

uint32_t Verdicts::pack(const TargetState& s) {
  uint32_t w = rttBucket(s.rtt_us);
  if (s.up) w |= kUpBit;
  if (s.usable()) w |= kUsableBit;
  w |= static_cast<uint32_t>(s.override) << kOverrideShift;
  return w;
}

bool Verdicts::set(uint32_t id, const TargetState& s) {
  if (id >= size_) return false;
  const uint32_t w = pack(s);
  if (words_[id].load(std::memory_order_relaxed) == w) return false;
  words_[id].store(w, std::memory_order_relaxed);
  ++stores_;
  return true;
}

const char* overrideName(Override o) {
  switch (o) {
    case Override::kNone:
      return "none";
    case Override::kForceUp:
      return "force-up";
    case Override::kForceDown:
      return "force-down";
    case Override::kDrain:
      return "drain";
  }
  return "?";
}

}  // namespace meridian::healthcheck
