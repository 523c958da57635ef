// The IPv4 scope blocks stored once (georoute/README.md): an IPv6 address where MaxMind's trees
// alias the IPv4 subtree (::/96, ::ffff:0:0/96, 2002::/16, 2001::/32) is answered from the IPv4
// blocks, with the same decision and ECS scope as the layout that repeated every IPv4 block in the
// IPv6 table (buildScopeBlocks(..., false)). The clients and the expected countries come from
// MaxMind's source data (source-data/GeoIP2-City-Test.json).
#include <arpa/inet.h>

#include <array>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "../testutil.h"
#include "georoute/compile.h"
#include "georoute/policy.h"
#include "server/steering_zones.h"
#include "steering_fixture.h"
#include "zones/loader.h"

using namespace meridian;
using test::show;
using test::showClient;

namespace {

const std::string kGeo = std::string(MERIDIAN_SHARED_DIR) + "/geoip/";

struct SourceNetwork {
  std::array<uint8_t, 16> address{};
  unsigned prefix = 0;  // IPv6 terms (an IPv4 network ::a.b.c.d/96+n)
  std::string country;  // country.iso_code, "" when absent
};

std::vector<SourceNetwork> sourceNetworks(const std::string& json_path) {
  std::ifstream in(json_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<SourceNetwork> out;
  for (const auto& entry : boost::json::parse(text).as_array()) {
    for (const auto& [key, record] : entry.as_object()) {
      const std::string cidr(key);
      const size_t slash = cidr.find('/');
      SourceNetwork n;
      n.prefix = static_cast<unsigned>(std::stoul(cidr.substr(slash + 1)));
      std::string addr = cidr.substr(0, slash);
      if (addr.find(':') == std::string::npos) {
        addr = "::" + addr;
        n.prefix += 96;
      }
      REQUIRE(inet_pton(AF_INET6, addr.c_str(), n.address.data()) == 1);
      if (const auto* c = record.as_object().if_contains("country")) {
        n.country = std::string(c->as_object().at("iso_code").as_string());
      }
      out.push_back(n);
    }
  }
  return out;
}

bool inside(const std::array<uint8_t, 16>& a, const SourceNetwork& n) {
  for (unsigned bit = 0; bit < n.prefix; ++bit) {
    const auto m = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((a[bit / 8] & m) != (n.address[bit / 8] & m)) return false;
  }
  return true;
}

// The most specific source network holding `a` (its country), or null.
const SourceNetwork* sourceOf(const std::vector<SourceNetwork>& nets,
                              const std::array<uint8_t, 16>& a) {
  const SourceNetwork* best = nullptr;
  for (const auto& n : nets) {
    if (inside(a, n) && (best == nullptr || n.prefix > best->prefix)) best = &n;
  }
  return best;
}

georoute::SteeringConfig config(const std::string& db) {
  georoute::SteeringConfig cfg;
  cfg.geoip = db;
  cfg.regions = {{"eu", 50.11, 8.68, 0},
                 {"us", 39.04, -77.49, 0},
                 {"ap", 1.35, 103.82, 0},
                 {"uk", 51.5, -0.12, 0}};
  auto service = [](const std::string& name, std::vector<std::string> policy) {
    georoute::ServiceConfig s;
    s.name = name + ".example.com";
    s.where = "test";
    s.policy = std::move(policy);
    s.pools = {test::pool("eu", "198.51.100.1"), test::pool("us", "198.51.100.2"),
               test::pool("ap", "198.51.100.3"), test::pool("uk", "198.51.100.4")};
    s.geo.default_list = {"us"};
    s.geo.continent = {{"EU", {"eu"}}, {"AS", {"ap"}}};
    s.geo.country = {{"GB", {"uk"}}, {"JP", {"eu"}}};
    return s;
  };
  cfg.services = {service("a", {"geo", "first_n"}), service("b", {"up", "nearest", "first_n"})};
  return cfg;
}

}  // namespace

TEST_CASE("IPv4 aliases in IPv6 answer from the shared IPv4 blocks as the repeated ones did",
          "[scope][alias]") {
  const std::string db =
      GENERATE(std::string("GeoIP2-City-Test.mmdb"), std::string("GeoLite2-City-Test.mmdb"),
               std::string("GeoIP2-Country-Test.mmdb"));
  INFO(db);
  const auto nets = sourceNetworks(kGeo + "source-data/GeoIP2-City-Test.json");
  REQUIRE(nets.size() > 200);

  auto z = zones::loadZoneText("example.com",
                               "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
                               "a A 192.0.2.1\nb A 192.0.2.1\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  auto compiled = georoute::loadSteering(config(kGeo + db), server::zoneLocator(zs));
  REQUIRE_OK(compiled);
  const georoute::ServiceSet& set = *compiled->services;
  const healthcheck::Verdicts health(compiled->targets.size());

  // The clients: each source network's first and last address and their neighbours, IPv4
  // networks also in each alias (::a.b.c.d, ::ffff:a.b.c.d, 2002:AABB:CCDD::, the Teredo
  // 2001:0:AABB:CCDD::, the latter two with host bits set), every source prefix at once of a few.
  std::vector<std::array<uint8_t, 16>> v6;
  std::vector<uint32_t> v4;
  auto alias = [&](uint32_t a) {
    std::array<uint8_t, 16> b{};
    dns::writeU32(b.data() + 12, a);
    v6.push_back(b);  // ::a.b.c.d
    b[10] = b[11] = 0xFF;
    v6.push_back(b);  // ::ffff:a.b.c.d
    std::array<uint8_t, 16> six{0x20, 0x02};
    dns::writeU32(six.data() + 2, a);
    six[15] = 1;
    v6.push_back(six);  // 2002:AABB:CCDD::1
    std::array<uint8_t, 16> teredo{0x20, 0x01};
    dns::writeU32(teredo.data() + 4, a);
    dns::writeU32(teredo.data() + 12, ~a);
    v6.push_back(teredo);  // 2001:0:AABB:CCDD::~a (server a, client a)
  };
  for (const auto& n : nets) {
    std::array<uint8_t, 16> first = n.address, last = n.address;
    for (unsigned bit = n.prefix; bit < 128; ++bit)
      last[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    const bool is_v4 = n.prefix >= 96 && std::all_of(first.begin(), first.begin() + 12,
                                                     [](uint8_t x) { return x == 0; });
    if (is_v4) {
      uint32_t f, l;
      std::memcpy(&f, first.data() + 12, 4);
      std::memcpy(&l, last.data() + 12, 4);
      f = ntohl(f);
      l = ntohl(l);
      for (uint32_t a : {f - 1, f, l, l + 1}) {
        v4.push_back(a);
        alias(a);
      }
    } else {
      v6.push_back(first);
      v6.push_back(last);
    }
  }

  size_t compared = 0, steered = 0;
  for (const auto& s : set.services) {
    INFO(s.name);
    georoute::Service repeated = s;
    georoute::buildScopeBlocks(set, repeated, false);
    // The shared table keeps the IPv4 blocks once: its IPv6 blocks are a few aliases and the
    // native networks, the repeated one has every IPv4 block three or four times more.
    size_t aliases = 0;
    for (const auto& b : s.scope_blocks_v6)
      aliases += (b.class_prefix >> 8) == georoute::kAliasClass;
    CHECK(aliases >= 3);
    CHECK(s.scope_blocks_v6.size() < s.scope_v4_start.size());
    CHECK(repeated.scope_blocks_v6.size() > 3 * s.scope_v4_start.size());
    CHECK(repeated.scope_v4_start == s.scope_v4_start);

    auto compare = [&](const georoute::Client& c) {
      const georoute::ScopeHit a = georoute::findScopeBlock(s, c);
      const georoute::ScopeHit b = georoute::findScopeBlock(repeated, c);
      INFO(showClient(c));
      REQUIRE(a.prefix == b.prefix);
      REQUIRE(a.cls == b.cls);
      REQUIRE(show(georoute::decide(set, s, 1, c, health)) ==
              show(georoute::decide(set, repeated, 1, c, health)));
      ++compared;
    };
    for (const auto& a : v6) {
      for (const unsigned source : {128u, 120u, 64u, 48u, 40u, 24u}) {
        georoute::Client c;
        c.ipv6 = true;
        c.from_ecs = true;
        c.source_prefix = static_cast<uint8_t>(source);
        std::memcpy(c.address, a.data(), 16);
        for (unsigned bit = source; bit < 128; ++bit)
          c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        compare(c);
      }
    }
    for (uint32_t a : v4) {
      georoute::Client c;
      dns::writeU32(c.address, a);
      c.source_prefix = 32;
      compare(c);
    }

    // What the source data says, through every alias: the country's region, the IPv4 scope + the
    // alias's length.
    if (s.name != "a.example.com.") continue;
    for (const auto& n : nets) {
      if (n.prefix < 96 || n.address[0] != 0 || n.country.empty()) continue;
      uint32_t a;
      std::memcpy(&a, n.address.data() + 12, 4);
      a = ntohl(a);
      const SourceNetwork* src = sourceOf(nets, n.address);
      if (src != &n) continue;  // a more specific network overrides its first address
      georoute::Client c4;
      dns::writeU32(c4.address, a);
      c4.source_prefix = 32;
      const auto d4 = georoute::decide(set, s, 1, c4, health);
      REQUIRE(d4.count == 1);
      const std::string want = n.country == "GB" ? "uk/198.51.100.4" : d4.chosen[0]->label;
      CHECK(d4.chosen[0]->label == want);
      const size_t first = v6.size();
      alias(a);
      const unsigned offsets[4] = {96, 96, 16, 32};
      for (size_t k = 0; k < 4; ++k) {
        georoute::Client c;
        c.ipv6 = true;
        c.source_prefix = 128;
        std::memcpy(c.address, v6[first + k].data(), 16);
        const auto d = georoute::decide(set, s, 1, c, health);
        INFO(showClient(c) << " for " << showClient(c4) << " (" << n.country << ")");
        REQUIRE(d.count == 1);
        CHECK(d.chosen[0]->label == want);
        CHECK(d.scope == d4.scope + offsets[k]);
        ++steered;
      }
    }
  }
  CHECK(compared > 20000);
  CHECK(steered > 100);
}

TEST_CASE("Teredo addresses are answered by the server's IPv4 address, as MaxMind aliases them",
          "[scope][alias]") {
  auto z = zones::loadZoneText("example.com",
                               "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
                               "a A 192.0.2.1\nb A 192.0.2.1\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  auto compiled =
      georoute::loadSteering(config(kGeo + "GeoIP2-City-Test.mmdb"), server::zoneLocator(zs));
  REQUIRE_OK(compiled);
  const georoute::ServiceSet& set = *compiled->services;
  const healthcheck::Verdicts health(compiled->targets.size());
  auto ask = [&](const char* ip) {
    georoute::Client c;
    c.ipv6 = true;
    c.source_prefix = 128;
    REQUIRE(inet_pton(AF_INET6, ip, c.address) == 1);
    return show(georoute::decide(set, set.services[0], 1, c, health));
  };
  // 81.2.69.142 is GB (source data, 81.2.69.142/31) -> uk; 2001:0:5102:458e:: is that server.
  // The client part (inverted 81.2.69.142 = ae.fd.ba.71) is not what the database reads.
  CHECK(ask("::ffff:81.2.69.142") == "0 /127 uk/198.51.100.4");
  CHECK(ask("2002:5102:458e::") == "0 /47 uk/198.51.100.4");
  CHECK(ask("2001:0:5102:458e::aefd:ba71") == "0 /63 uk/198.51.100.4");
  CHECK(ask("2001:0:0a00:0001::aefd:ba71") != "0 /63 uk/198.51.100.4");
}
