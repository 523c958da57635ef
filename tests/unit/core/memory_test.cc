// core::allocateTable / TableVector (core/memory.h): the large tables of a zone get their own
// 2 MiB-aligned mapping marked MADV_HUGEPAGE, unmapped when freed; small ones come from the heap.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/memory.h"

namespace {

using meridian::core::allocateTable;
using meridian::core::freeTable;
using meridian::core::kHugeTableOctets;
using meridian::core::TableVector;

constexpr uintptr_t kTwoMiB = uintptr_t{2} << 20;

// The smaps block of the mapping that holds `p` (empty when no mapping does).
std::string smapsOf(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line, block;
  bool inside = false;
  const auto at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find(':') > line.find(' ') && (head >> std::hex >> lo >> dash >> hi) && dash == '-') {
      if (inside) return block;
      inside = at >= lo && at < hi;
      block.clear();
    }
    if (inside) block += "\n" + line;
  }
  return inside ? block : "";
}

// The number after "KEY:" in an smaps block (-1 when absent).
long field(const std::string& smaps, const std::string& key) {
  const size_t at = smaps.find("\n" + key + ":");
  if (at == std::string::npos) return -1;
  return std::stol(smaps.substr(at + key.size() + 2));
}

// "always" or "madvise" selected in the kernel's THP setting.
bool hugePagesOffered() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.find("[always]") != std::string::npos || s.find("[madvise]") != std::string::npos;
}

}  // namespace

TEST_CASE("a large table is its own 2 MiB-aligned mapping marked for huge pages", "[memory]") {
  const size_t octets = 3 * kTwoMiB + 12345;
  auto* p = static_cast<uint8_t*>(allocateTable(octets));
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % kTwoMiB == 0);
  std::memset(p, 0xA5, octets);  // all of it is writable
  CHECK(p[octets - 1] == 0xA5);
  const std::string smaps = smapsOf(p);
  REQUIRE_FALSE(smaps.empty());
  // The mapping is exactly the table rounded up to 2 MiB: 4 huge pages, nothing around it.
  CHECK(field(smaps, "Size") == 8192);
  if (hugePagesOffered()) {
    CHECK(field(smaps, "THPeligible") == 1);
    CHECK(smaps.find(" hg") != std::string::npos);  // VmFlags: hg = MADV_HUGEPAGE
  }
  freeTable(p, octets);
  CHECK(smapsOf(p).empty());  // unmapped at once
}

TEST_CASE("a small table comes from the heap and a TableVector works like a vector", "[memory]") {
  void* small = allocateTable(kHugeTableOctets - 1);
  REQUIRE(small != nullptr);
  freeTable(small, kHugeTableOctets - 1);
  freeTable(nullptr, 1 << 24);  // harmless

  TableVector<uint32_t> v;
  for (uint32_t i = 0; i < 1'000'000; ++i) v.push_back(i);  // grows across the threshold
  CHECK(reinterpret_cast<uintptr_t>(v.data()) % kTwoMiB == 0);
  CHECK(v[999'999] == 999'999);
  TableVector<uint32_t> w = v;
  CHECK(w == v);
  v.clear();
  v.shrink_to_fit();
  CHECK(w.size() == 1'000'000);
}

TEST_CASE("a small table keeps its type's alignment", "[memory]") {
  struct alignas(64) Wide {
    char c = 0;
  };
  // operator new without the alignment gives 16 octets: of eight tables, some would be off.
  std::vector<TableVector<Wide>> tables(8);
  for (size_t i = 0; i < tables.size(); ++i) {
    tables[i].resize(i + 1);
    CHECK(reinterpret_cast<uintptr_t>(tables[i].data()) % alignof(Wide) == 0);
  }
}
