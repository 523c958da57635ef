#include "core/memory.h"

#include <sys/mman.h>

#include <cstdint>

namespace meridian::core {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t mappedOctets(size_t octets) {
  return (octets + kHugePage - 1) & ~(kHugePage - 1);
}

}  // namespace

void* allocateTable(size_t octets, size_t align) {
  if (octets < kHugeTableOctets) return ::operator new(octets, std::align_val_t(align));
  const size_t length = mappedOctets(octets);
  // Map one huge page more than needed, then unmap the unaligned head and the tail.
  void* raw =
      mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t end = begin + length + kHugePage;
  if (end > aligned + length)
    munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
  // Only a hint: a kernel with THP off refuses it and the table stays on 4 KiB pages.
  (void)madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void freeTable(void* p, size_t octets, size_t align) noexcept {
  if (p == nullptr) return;
  if (octets < kHugeTableOctets) {
    ::operator delete(p, std::align_val_t(align));
    return;
  }
  munmap(p, mappedOctets(octets));
}

}  // namespace meridian::core
