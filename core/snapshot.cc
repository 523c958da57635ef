// QuiescentDomain: registration of reader slots and control-side reclamation (see snapshot.h).
#include "core/snapshot.h"

#include <algorithm>

namespace meridian {

QuiescentDomain::~QuiescentDomain() {
  retired_.clear();
}

QuiescentDomain& QuiescentDomain::global() {
  static QuiescentDomain domain;
  return domain;
}

QuiescentDomain::Slot* QuiescentDomain::enter() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Slot& s : slots_) {
    if (s.seen.load(std::memory_order_relaxed) == kOffline) {
      // Under the mutex: a reclaim scan either sees this slot, or ran before it and freed only
      // what was retired before the epoch read here.
      s.seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_seq_cst);
      return &s;
    }
  }
  return nullptr;
}

void QuiescentDomain::leave(Slot* slot) {
  if (slot == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  slot->seen.store(kOffline, std::memory_order_release);
}

uint64_t QuiescentDomain::oldestSeen() const {
  uint64_t oldest = kOffline;
  for (const Slot& s : slots_) oldest = std::min(oldest, s.seen.load(std::memory_order_acquire));
  return oldest;
}

void QuiescentDomain::retire(std::shared_ptr<const void> old) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The publish that replaced `old` happened before this increment; a reader that sees the new
  // epoch at a quiescent point therefore reads the new pointer from then on.
  const uint64_t e = epoch_.fetch_add(1, std::memory_order_acq_rel) + 1;
  retired_.push_back(Retired{std::move(old), e});
}

size_t QuiescentDomain::reclaim() {
  std::vector<std::shared_ptr<const void>> done;
  size_t left = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (retired_.empty()) return 0;
    const uint64_t oldest = oldestSeen();
    auto keep = std::stable_partition(retired_.begin(), retired_.end(),
                                      [oldest](const Retired& r) { return r.epoch > oldest; });
    for (auto it = keep; it != retired_.end(); ++it) done.push_back(std::move(it->object));
    retired_.erase(keep, retired_.end());
    left = retired_.size();
  }
  // Destroyed here, on the caller's (control) thread, outside the mutex.
  freed_.fetch_add(done.size(), std::memory_order_relaxed);
  done.clear();
  return left;
}

size_t QuiescentDomain::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return retired_.size();
}

}  // namespace meridian
