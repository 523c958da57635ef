#include <catch2/catch.hpp>

#include "zones/serial.h"

using meridian::zones::compareSerials;
using meridian::zones::serialNewer;
using meridian::zones::SerialOrder;

TEST_CASE("RFC 1982 serial comparison") {
  struct Case {
    uint32_t a, b;
    SerialOrder order;
  };
  const Case cases[] = {
      {1, 1, SerialOrder::kEqual},
      {1, 2, SerialOrder::kLess},
      {2, 1, SerialOrder::kGreater},
      {0xFFFFFFFFu, 0, SerialOrder::kLess},  // wraps: 0 follows 2^32-1
      {0, 0xFFFFFFFFu, SerialOrder::kGreater},
      {2024010101u, 2024010102u, SerialOrder::kLess},
      {0, 0x7FFFFFFFu, SerialOrder::kLess},       // 2^31 - 1 ahead: still newer
      {0, 0x80000000u, SerialOrder::kUndefined},  // exactly 2^31 apart (RFC 1982 §3.2)
      {0x80000000u, 0, SerialOrder::kUndefined},
      {0, 0x80000001u, SerialOrder::kGreater},  // more than 2^31 ahead reads as behind
      {100, 50, SerialOrder::kGreater},
  };
  for (const auto& c : cases) {
    INFO(c.a << " vs " << c.b);
    CHECK(compareSerials(c.a, c.b) == c.order);
  }
  CHECK(serialNewer(2, 1));
  CHECK_FALSE(serialNewer(1, 1));
  CHECK_FALSE(serialNewer(1, 2));
  CHECK(serialNewer(0, 0xFFFFFFFFu));
  static_assert(compareSerials(5, 5) == SerialOrder::kEqual);
}
