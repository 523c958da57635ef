// Memory for the large, read-mostly tables the query path walks at random (a zone's name index,
// nodes, RRsets and record octets). Allocated and freed on the control side only; the query path
// just reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace meridian::core {

// Tables of at least this many octets get their own mapping on huge pages.
inline constexpr size_t kHugeTableOctets = size_t{1} << 20;

// `octets` for a table aligned to `align` (a power of two): below kHugeTableOctets from operator
// new (the aligned form, as std::allocator uses for over-aligned types); from there on an anonymous
// mapping aligned to and rounded up to 2 MiB, marked MADV_HUGEPAGE before it is touched, so the
// kernel backs it with transparent huge pages where it can (THP "always" or "madvise"). A query's
// random walk over a table of several MiB then needs one TLB entry per 2 MiB instead of one per
// 4 KiB. Throws std::bad_alloc when the memory cannot be had. Freed by freeTable with the same
// `octets` and `align`; a freed mapping goes back to the system at once (a smaller zone after a
// large one does not keep the large one's memory).
[[nodiscard]] void* allocateTable(size_t octets, size_t align = alignof(std::max_align_t));
void freeTable(void* p, size_t octets, size_t align = alignof(std::max_align_t)) noexcept;

// The allocator of such tables, for std::vector.
template <class T>
struct TableAllocator {
  using value_type = T;
  TableAllocator() = default;
  template <class U>
  TableAllocator(const TableAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] T* allocate(size_t n) {
    return static_cast<T*>(allocateTable(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { freeTable(p, n * sizeof(T), alignof(T)); }
  template <class U>
  bool operator==(const TableAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using TableVector = std::vector<T, TableAllocator<T>>;

}  // namespace meridian::core
