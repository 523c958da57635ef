// Writes the seed databases of fuzz_mmdb (tests/fuzz/mmdb_corpus/) with tools::MmdbWriter, so
// the corpus in the repository is ours and reproducible (fixed build epoch), not copies of
// MaxMind's test files:  build/tests/make_mmdb_seeds tests/fuzz/mmdb_corpus Each file exercises a
// different part of the reader: both tree kinds (IPv6 with the IPv4 aliases, IPv4 only), all the
// record fields GeoDatabase decodes, overwritten subtrees, a /0 and a /128, and the larger record
// size that many networks need.
#include <cstdio>
#include <string>

#include "tools/mmdb_writer.h"

namespace {

using meridian::tools::MmdbNetwork;
using meridian::tools::MmdbRecord;
using meridian::tools::MmdbWriter;

MmdbNetwork net(const char* address, unsigned prefix, MmdbRecord r) {
  return MmdbNetwork{boost::asio::ip::make_address(address), prefix, std::move(r)};
}

bool write(MmdbWriter& w, const std::string& dir, const char* name) {
  w.setBuildEpoch(1700000000);
  w.setDescription(std::string("fuzz seed ") + name);
  auto r = w.write(dir + "/" + name);
  if (!r) std::fprintf(stderr, "%s: %s\n", name, r.error().message.c_str());
  return r.has_value();
}

bool add(MmdbWriter& w, const MmdbNetwork& n) {
  auto r = w.add(n);
  if (!r) std::fprintf(stderr, "add: %s\n", r.error().message.c_str());
  return r.has_value();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_mmdb_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  {
    // City-like: every field, IPv4 and IPv6, a /16 with a /24 carved out of it.
    MmdbWriter w("GeoIP2-City");
    MmdbRecord de{"eu", "DE", "EU", 50.1, 8.7, 3320, "DE", {"HE"}};
    MmdbRecord gb{"eu", "GB", "EU", 51.5, -0.1, 2856, "GB", {"ENG", "WBK"}};
    MmdbRecord us{"us", "US", "NA", 39.0, -77.5, 7018, "US", {"VA"}};
    MmdbRecord jp{"ap", "JP", "AS", 35.7, 139.7, std::nullopt, "", {}};
    ok &= add(w, net("192.0.0.0", 16, us));
    ok &= add(w, net("192.0.2.0", 24, de));
    ok &= add(w, net("198.51.100.0", 24, gb));
    ok &= add(w, net("203.0.113.0", 24, jp));
    ok &= add(w, net("2001:db8::", 32, gb));
    ok &= add(w, net("2001:db8:1::", 48, us));
    ok &= write(w, dir, "city.mmdb");
  }
  {
    // IPv4-only tree, country and registered country only.
    MmdbWriter w("GeoIP2-Country", 4);
    MmdbRecord fr;
    fr.country_iso = "FR";
    fr.continent_code = "EU";
    MmdbRecord reg;
    reg.registered_country_iso = "NL";
    ok &= add(w, net("10.0.0.0", 8, fr));
    ok &= add(w, net("10.1.0.0", 16, reg));
    ok &= add(w, net("89.160.20.0", 24, fr));
    ok &= write(w, dir, "country-v4.mmdb");
  }
  {
    // One record for everything, and an IPv6 host route: the shallowest and deepest trees.
    MmdbWriter w("Meridian-Map");
    MmdbRecord all;
    all.region = "default";
    MmdbRecord host;
    host.region = "host";
    host.latitude = -33.9;
    host.longitude = 151.2;
    ok &= add(w, net("::", 0, all));
    ok &= add(w, net("2001:db8::1", 128, host));
    ok &= write(w, dir, "map-edges.mmdb");
  }
  {
    // ASN-like: only autonomous_system_number, many distinct records (a bigger record size).
    MmdbWriter w("GeoLite2-ASN");
    for (unsigned i = 0; i < 64; ++i) {
      MmdbRecord r;
      r.asn = 64496 + i;
      const std::string a = "100." + std::to_string(64 + i) + ".0.0";
      ok &= add(w, net(a.c_str(), 16, r));
    }
    ok &= write(w, dir, "asn.mmdb");
  }
  {
    // Regions only, as `meridian mmdb build` writes a CSV map.
    MmdbWriter w;
    for (const char* region : {"eu-west", "eu-central", "us-east"}) {
      MmdbRecord r;
      r.region = region;
      const std::string a = std::string("2001:db8:") + (region[0] == 'e' ? "e" : "a") +
                            std::to_string(region[3] == 'w' ? 1 : 2) + "::";
      ok &= add(w, net(a.c_str(), 48, r));
    }
    ok &= write(w, dir, "regions.mmdb");
  }
  return ok ? 0 : 1;
}
