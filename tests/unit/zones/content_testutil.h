// Helpers for the ZoneContent, ZoneDiff and writer tests: zones from text, random zones and random
// edits (seeded, so a failure names a reproducible case).
#pragma once

#include <catch2/catch.hpp>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "zones/content.h"

// How Catch prints a Result and an optional in a failed CHECK (the message, the value).
namespace Catch {
template <typename T>
struct StringMaker<boost::system::result<T, meridian::Error>> {
  static std::string convert(const boost::system::result<T, meridian::Error>& r) {
    return r.has_value() ? std::string("ok") : "error: " + r.error().message;
  }
};
template <typename T>
struct StringMaker<std::optional<T>> {
  static std::string convert(const std::optional<T>& v) {
    return v ? StringMaker<T>::convert(*v) : std::string("nullopt");
  }
};
}  // namespace Catch

namespace meridian::test {

inline dns::NameBuf name(const std::string& text) {
  dns::NameBuf n;
  if (!dns::fromText(text, n)) throw std::runtime_error("bad name " + text);
  return n;
}

// The example zones and the differential tests' zones: origin, path.
inline std::vector<std::pair<std::string, std::string>> exampleZoneFiles() {
  const std::string root = MERIDIAN_SOURCE_DIR;
  return {
      {"example.com", root + "/examples/zones/example.com.zone"},
      {"example.net", root + "/examples/zones/example.net.zone"},
      {"example.com", root + "/tests/differential/zones/example.com.zone"},
      {"example.net", root + "/tests/differential/zones/example.net.zone"},
      {"child.example.com", root + "/tests/differential/zones/child.example.com.zone"},
  };
}

inline zones::ZoneContent contentOf(const std::string& origin, const std::string& text) {
  auto loaded = zones::loadZoneContentText(origin, text, "t.zone");
  if (!loaded) FAIL(loaded.error().message);
  return std::move(loaded->content);
}

inline std::vector<uint8_t> bytes(std::initializer_list<int> octets) {
  std::vector<uint8_t> v;
  for (int o : octets) v.push_back(static_cast<uint8_t>(o));
  return v;
}

// Random data for property tests: owners under `apex` with labels of letters in both cases, digits,
// and now and then odd octets (dots, backslashes, quotes, 0x00, 0xFF, blanks); RRsets of A, AAAA,
// TXT (any octets, strings up to 255), MX, SRV, CAA and a private type (RFC 3597).
class RandomZone {
 public:
  explicit RandomZone(uint32_t seed) : rng_(seed) {}

  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  dns::NameBuf owner(const dns::NameBuf& apex) {
    dns::NameBuf n;
    size_t len = 0;
    const size_t labels = 1 + below(3);
    for (size_t k = 0; k < labels; ++k) {
      const size_t l = 1 + below(below(8) == 0 ? 20 : 4);
      n.data[len++] = static_cast<uint8_t>(l);
      for (size_t i = 0; i < l; ++i) n.data[len++] = octet();
    }
    std::memcpy(n.data + len, apex.data, apex.length);
    n.length = static_cast<uint8_t>(len + apex.length);
    return n;
  }

  // A name from a small pool (so edits hit existing names), case flipped now and then.
  dns::NameBuf pooled(const dns::NameBuf& apex) {
    while (pool_.size() < 12) pool_.push_back(owner(apex));
    dns::NameBuf n = pool_[below(pool_.size())];
    if (below(6) == 0) {
      for (size_t i = 0; i < n.length; ++i) {
        if (std::isalpha(n.data[i]) && below(2) == 0) n.data[i] ^= 0x20;
      }
    }
    return n;
  }

  uint16_t type() {
    static const uint16_t kTypes[] = {1, 28, 16, 15, 33, 257, 65280};
    return kTypes[below(std::size(kTypes))];
  }

  std::vector<uint8_t> rdata(uint16_t type, const dns::NameBuf& apex) {
    std::vector<uint8_t> rd;
    auto put = [&](size_t n) {
      for (size_t i = 0; i < n; ++i) rd.push_back(static_cast<uint8_t>(below(256)));
    };
    auto putName = [&] {
      const dns::NameBuf n = owner(apex);
      rd.insert(rd.end(), n.data, n.data + n.length);
    };
    switch (type) {
      case 1:
        put(4);
        break;
      case 28:
        put(16);
        break;
      case 16:
        for (size_t s = 1 + below(3); s-- > 0;) {
          const size_t len = below(4) == 0 ? below(256) : below(12);
          rd.push_back(static_cast<uint8_t>(len));
          put(len);
        }
        break;
      case 15:
        put(2);
        putName();
        break;
      case 33:
        put(6);
        putName();
        break;
      case 257: {
        rd.push_back(static_cast<uint8_t>(below(2) * 128));
        const char* tags[] = {"issue", "issuewild", "iodef", "Tbs9"};
        const std::string tag = tags[below(4)];
        rd.push_back(static_cast<uint8_t>(tag.size()));
        rd.insert(rd.end(), tag.begin(), tag.end());
        put(below(30));
        break;
      }
      default:
        put(below(40));
        break;
    }
    return rd;
  }

  zones::RRsetSpec rrset(const dns::NameBuf& apex) {
    zones::RRsetSpec s;
    s.owner = pooled(apex);
    s.type = type();
    s.ttl = static_cast<uint32_t>(below(4) == 0 ? below(0x7FFFFFFF) : 60 * below(100));
    for (size_t k = 1 + below(4); k-- > 0;) s.rdata.push_back(rdata(s.type, apex));
    return s;
  }

  // A valid zone: SOA and NS at the apex, then `rrsets` random RRsets.
  zones::ZoneContent zone(const dns::NameBuf& apex, size_t rrsets) {
    zones::ZoneContent c(apex);
    zones::RRsetSpec soa{apex, dns::rrtype::kSOA, 3600, {}};
    std::vector<uint8_t> rd;
    const dns::NameBuf ns = name("ns1.example.net.");
    rd.insert(rd.end(), ns.data, ns.data + ns.length);
    rd.insert(rd.end(), ns.data, ns.data + ns.length);
    for (uint32_t v : {static_cast<uint32_t>(below(0xFFFFFFFF)), 7200u, 3600u, 1209600u, 300u}) {
      for (int s = 24; s >= 0; s -= 8) rd.push_back(static_cast<uint8_t>(v >> s));
    }
    soa.rdata.push_back(rd);
    REQUIRE(c.replace(soa));
    REQUIRE(c.replace({apex, dns::rrtype::kNS, 3600, {{ns.data, ns.data + ns.length}}}));
    for (size_t k = 0; k < rrsets; ++k) REQUIRE(c.replace(rrset(apex)));
    return c;
  }

 private:
  uint8_t octet() {
    if (below(10) == 0) {
      static const uint8_t kOdd[] = {'.', '\\', '"', ' ', '\t', ';', '(', '$', '@', 0, 0xFF, 0x7F};
      return kOdd[below(std::size(kOdd))];
    }
    static const char kPlain[] = "abcXYZ019-_*";
    return static_cast<uint8_t>(kPlain[below(sizeof kPlain - 1)]);
  }

  std::mt19937 rng_;
  std::vector<dns::NameBuf> pool_;
};

}  // namespace meridian::test
