// ZoneDiff: diff() and apply() over random edits (seeded), apply() refusing a diff made from other
// content, and the serial policies with RFC 1982 arithmetic at their edges.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "zones/diff.h"
#include "zones/serial.h"

using namespace meridian;
using test::bytes;
using test::contentOf;
using test::name;

namespace {

// A random edit of `c`: replace, add or delete RRsets, change a TTL or an owner's case, reorder an
// RRset's records, and (usually) bump the serial.
void edit(zones::ZoneContent& c, test::RandomZone& r) {
  for (size_t n = r.below(5); n-- > 0;) {
    switch (r.below(6)) {
      case 0:
      case 1:
        REQUIRE(c.replace(r.rrset(c.apex())));
        break;
      case 2:
        if (c.rrsetCount() > 2) {
          const auto rs = c.rrset(2 + r.below(c.rrsetCount() - 2));
          c.remove(rs.owner(), rs.type());
        }
        break;
      case 3:
      case 4: {
        if (c.rrsetCount() <= 2) break;
        auto spec = c.rrset(2 + r.below(c.rrsetCount() - 2)).spec();
        if (r.below(2) == 0) spec.ttl ^= 1;
        if (r.below(2) == 0) std::reverse(spec.rdata.begin(), spec.rdata.end());
        for (size_t i = 0; i < spec.owner.length; ++i) {
          if (std::isalpha(spec.owner.data[i]) && r.below(3) == 0) spec.owner.data[i] ^= 0x20;
        }
        REQUIRE(c.replace(spec));
        break;
      }
      default:
        break;
    }
  }
  if (r.below(4) != 0) {
    REQUIRE(c.setSerial(zones::nextSerial(*c.serial(), zones::SerialPolicy::kIncrement, 0)));
  }
}

}  // namespace

TEST_CASE("diff: apply(a, diff(a, b)) == b over random edits", "[zones][diff]") {
  const dns::NameBuf apex = name("Example.COM.");
  size_t cases = 0, empty = 0, changed = 0;
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    INFO("seed " << seed);
    test::RandomZone r(seed);
    const zones::ZoneContent a = r.zone(apex, r.below(30));
    zones::ZoneContent b = a;
    edit(b, r);
    const zones::ZoneDiff d = zones::diff(a, b);
    CHECK(d.old_serial == *a.serial());
    CHECK(d.new_serial == *b.serial());
    CHECK(d.empty() == (a == b));
    zones::ZoneContent c = a;
    auto ok = zones::apply(c, d);
    REQUIRE(ok);
    REQUIRE(c == b);
    // The reverse diff undoes it.
    const zones::ZoneDiff back = zones::diff(b, a);
    REQUIRE(zones::apply(c, back));
    REQUIRE(c == a);
    // Applying the same diff twice is refused (unless it changed nothing), leaving the content.
    zones::ZoneContent twice = b;
    auto again = zones::apply(twice, d);
    if (!d.empty() && d.old_serial != d.new_serial) CHECK_FALSE(again);
    if (!again) CHECK(twice == b);
    ++cases;
    (d.empty() ? empty : changed) += 1;
  }
  CHECK(cases == 3000);
  CHECK(changed > 2000);  // the edits mostly change something
}

TEST_CASE("diff: RRsets removed and added, the SOA among them", "[zones][diff]") {
  const std::string head =
      "$ORIGIN example.\n@ 3600 SOA ns1 host 10 7200 3600 1209600 300\n@ 3600 NS ns1\n"
      "ns1 3600 A 192.0.2.1\n";
  const auto a = contentOf("example", head + "www 60 A 192.0.2.10\nold 60 TXT gone\n");
  auto b = contentOf("example", head + "www 60 A 192.0.2.11\nnew 60 TXT here\n");
  REQUIRE(b.setSerial(11));
  const auto d = zones::diff(a, b);
  CHECK(d.old_serial == 10);
  CHECK(d.new_serial == 11);
  auto list = [](const zones::ZoneContent& c) {
    std::vector<std::string> out;
    for (size_t i = 0; i < c.rrsetCount(); ++i) {
      out.push_back(c.rrset(i).ownerText() + " " + std::to_string(c.rrset(i).type()));
    }
    return out;
  };
  CHECK(list(d.removed) ==
        std::vector<std::string>{"example. 6", "old.example. 16", "www.example. 1"});
  CHECK(list(d.added) ==
        std::vector<std::string>{"example. 6", "new.example. 16", "www.example. 1"});
  CHECK(zones::diff(a, a).empty());
}

TEST_CASE("diff: apply refuses a diff that does not match, changing nothing", "[zones][diff]") {
  const std::string head =
      "$ORIGIN example.\n@ 3600 SOA ns1 host 10 7200 3600 1209600 300\n@ 3600 NS ns1\n"
      "ns1 3600 A 192.0.2.1\n";
  const auto a = contentOf("example", head + "www 60 A 192.0.2.10\n");
  auto b = a;
  REQUIRE(b.replace({name("www.example."), dns::rrtype::kA, 60, {bytes({192, 0, 2, 11})}}));
  REQUIRE(b.replace({name("new.example."), dns::rrtype::kA, 60, {bytes({192, 0, 2, 12})}}));
  REQUIRE(b.setSerial(11));
  const auto d = zones::diff(a, b);

  // Wrong old serial.
  auto c = a;
  REQUIRE(c.setSerial(9));
  const auto c_before = c;
  auto r = zones::apply(c, d);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "the change applies to serial 10 but zone example. is at serial 9");
  CHECK(c == c_before);

  // A removed RRset that is not there, or not as recorded.
  c = a;
  REQUIRE(c.remove(name("www.example.").data, dns::rrtype::kA));
  const auto without = c;
  r = zones::apply(c, d);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "the change removes www.example. A, which zone example. does not have");
  CHECK(c == without);
  c = a;
  REQUIRE(c.replace({name("www.example."), dns::rrtype::kA, 61, {bytes({192, 0, 2, 10})}}));
  const auto other_ttl = c;
  r = zones::apply(c, d);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "the change removes www.example. A, which differs in zone example. from what the change "
        "expects");
  CHECK(c == other_ttl);

  // An added RRset that exists already (someone else added it).
  c = a;
  REQUIRE(c.replace({name("new.example."), dns::rrtype::kA, 60, {bytes({192, 0, 2, 13})}}));
  const auto raced = c;
  r = zones::apply(c, d);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "the change adds new.example. A, which zone example. already has (and the change does "
        "not remove)");
  CHECK(c == raced);

  // Another zone's diff.
  auto other = contentOf("example.org",
                         "$ORIGIN example.org.\n@ 3600 SOA ns1 host 10 1 1 1 1\n"
                         "@ NS ns1\nns1 A 192.0.2.1\n");
  r = zones::apply(other, d);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "the change is for zone example., not example.org.");

  c = a;
  REQUIRE(zones::apply(c, d));
  CHECK(c == b);
}

TEST_CASE("serial policies: increment, date, unixtime, always RFC 1982-newer", "[zones][serial]") {
  using zones::nextSerial;
  using zones::SerialPolicy;
  // 2026-12-01 12:00:00 UTC.
  constexpr int64_t kNow = 1796126400;
  static_assert(zones::utcDate(kNow) == 20261201u);
  static_assert(zones::utcDate(0) == 19700101u);
  static_assert(zones::utcDate(951782400) == 20000229u);   // a leap day of a century year
  static_assert(zones::utcDate(1798761599) == 20261231u);  // the year's last second
  static_assert(zones::utcDate(1798761600) == 20270101u);  // and the next
  static_assert(zones::utcDate(-1) == 19691231u);

  // Increment, across the wrap-around: 2^32-1 is followed by 0, which is newer (RFC 1982 §3.1).
  CHECK(nextSerial(41, SerialPolicy::kIncrement, kNow) == 42);
  CHECK(nextSerial(0xFFFFFFFFu, SerialPolicy::kIncrement, kNow) == 0);
  CHECK(zones::serialNewer(0, 0xFFFFFFFFu));

  // Date: today's 00 when newer, else + 1; the 100th change of a day rolls into the next day's 00.
  CHECK(nextSerial(2026113005, SerialPolicy::kDate, kNow) == 2026120100u);
  CHECK(nextSerial(2026120100, SerialPolicy::kDate, kNow) == 2026120101u);
  CHECK(nextSerial(2026120198, SerialPolicy::kDate, kNow) == 2026120199u);
  CHECK(nextSerial(2026120199, SerialPolicy::kDate, kNow) == 2026120200u);
  CHECK(nextSerial(2026120500, SerialPolicy::kDate, kNow) == 2026120501u);  // ahead of the date
  CHECK(nextSerial(1, SerialPolicy::kDate, kNow) == 2026120100u);  // a counter becomes a date
  // A serial more than 2^31 below the date serial reads as newer than it (RFC 1982): + 1.
  CHECK(nextSerial(4000000000u, SerialPolicy::kDate, kNow) == 4000000001u);
  CHECK(nextSerial(0xFFFFFFFFu, SerialPolicy::kDate, kNow) == 2026120100u);  // 0 + 2026120100

  // Unixtime: now when newer; a current serial ahead of the clock (or equal) gets + 1.
  CHECK(nextSerial(1700000000u, SerialPolicy::kUnixtime, kNow) == 1796126400u);
  CHECK(nextSerial(1796126400u, SerialPolicy::kUnixtime, kNow) == 1796126401u);
  CHECK(nextSerial(1900000000u, SerialPolicy::kUnixtime, kNow) == 1900000001u);
  CHECK(nextSerial(2026120101u, SerialPolicy::kUnixtime, kNow) == 2026120102u);  // date > now
  // Exactly 2^31 apart is undefined in RFC 1982, so not newer: + 1.
  CHECK(nextSerial(kNow - 0x80000000ll + 0x100000000ll, SerialPolicy::kUnixtime, kNow) ==
        static_cast<uint32_t>(kNow - 0x80000000ll + 0x100000000ll + 1));

  for (uint32_t s : {0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu, 2026120199u}) {
    for (auto p : {SerialPolicy::kIncrement, SerialPolicy::kDate, SerialPolicy::kUnixtime}) {
      INFO(s);
      CHECK(zones::serialNewer(nextSerial(s, p, kNow), s));
    }
  }
}
