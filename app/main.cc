// meridian: the server binary. `meridian [options]` serves; `meridian check` validates the
// configuration, every zone file and every GeoIP database it names, and exits non-zero listing
// every problem with file:line (2 when there is nothing to check). `explain` and `mmdb` are tools,
// `config-reference` prints docs/configuration.md; `api hash-key` prints the stored form of an API
// key's secret ([[api.key]] hash);
// `--version` prints the project version that CMake passes in as MERIDIAN_VERSION.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>

#include <strings.h>

#include <boost/asio/io_context.hpp>

#include "api/auth.h"
#include "app/config.h"
#include "app/config_schema.h"
#include "app/control_socket.h"
#include "app/runtime.h"
#include "core/log.h"
#include "georoute/compile.h"
#include "georoute/geoip.h"
#include "georoute/policy.h"
#include "resolver/asio_transport.h"
#include "resolver/iterator.h"
#include "resolver/root_hints.h"
#include "server/steering_zones.h"
#include "tools/mmdb_writer.h"
#include "zones/loader.h"
#include "zones/writer.h"

using meridian::app::CommandLine;

namespace {

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: meridian [--config FILE] [--listen ADDR:PORT]... [--zone NAME=FILE]...\n"
      "                [--threads N] [--set KEY=VALUE]... [--log-level LEVEL]\n"
      "       meridian check [--config FILE] [--zone NAME=FILE]... [--set KEY=VALUE]...\n"
      "       meridian explain --config FILE --client IP[/PREFIX] NAME [TYPE] [--down LABEL]...\n"
      "       meridian mmdb build NETWORKS.csv OUT.mmdb\n"
      "       meridian config-reference [--format markdown|man]   (every configuration key,\n"
      "                                   as Markdown or as the man page meridian.toml(5))\n"
      "       meridian api hash-key [SECRET]   (the [[api.key]] hash; SECRET read from stdin\n"
      "                                         when not given)\n"
      "       meridian resolve [--root-hints FILE] [--no-qname-minimisation] NAME [TYPE]\n"
      "                                  (iterative resolution from the root, as drill -T)\n"
      "\n"
      "  --listen ADDR:PORT  address to serve on, UDP and TCP (repeatable; \"[::1]:53\" for IPv6;\n"
      "                      the port is required, 0 = any free port)\n"
      "  --zone NAME=FILE    serve zone NAME from an RFC 1035 zone file (repeatable)\n"
      "  --threads N         worker threads (default: CPUs in the affinity mask)\n"
      "  --config FILE       TOML configuration; flags override it\n"
      "  --set KEY=VALUE     override a configuration key, e.g. --set server.nsid=ns1\n"
      "  --log-level LEVEL   debug, info, warning or error (default: log.level, else info)\n"
      "  --version           print the version and exit\n"
      "\n"
      "`meridian check --help`, `meridian explain --help`: those commands' options.\n"
      "\n"
      "SIGHUP (or `meridianctl reload`) reloads configuration and zones; SIGTERM drains and "
      "exits.\n\n%s",
      meridian::app::configKeysHelp());
}

void checkUsage(FILE* out) {
  std::fprintf(
      out,
      "usage: meridian check [--config FILE] [--zone NAME=FILE]... [--set KEY=VALUE]...\n"
      "\n"
      "Loads the configuration, every zone file and every GeoIP database it names ([geoip]\n"
      "database, asn_database, whether or not a service uses them) and compiles the steering,\n"
      "exactly as the server would, without serving. Prints one line per item checked; on a\n"
      "problem prints file:line: message.\n"
      "\n"
      "  --config FILE       the TOML configuration to check\n"
      "  --zone NAME=FILE    also check zone NAME from an RFC 1035 zone file (repeatable)\n"
      "  --set KEY=VALUE     override a configuration key before checking\n"
      "\n"
      "Exit status: 0 everything is valid, 1 a problem was found, 2 bad usage (nothing to "
      "check).\n");
}

constexpr const char* kLogLevels[] = {"debug", "info", "warning", "error"};

bool parseArgs(int argc, char** argv, int first, bool is_check, CommandLine& cmd) {
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "meridian: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "--config" || a == "-c") {
      if (!(v = value("--config"))) return false;
      cmd.config_file = v;
    } else if (a == "--listen" || a == "-l") {
      if (!(v = value("--listen"))) return false;
      cmd.listen.emplace_back(v);
    } else if (a == "--zone" || a == "-z") {
      if (!(v = value("--zone"))) return false;
      cmd.zones.emplace_back(v);
    } else if (a == "--set") {
      if (!(v = value("--set"))) return false;
      cmd.sets.emplace_back(v);
    } else if (a == "--threads" || a == "-t") {
      if (!(v = value("--threads"))) return false;
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 0 || n > 1024) {
        std::fprintf(stderr, "meridian: --threads must be 0..1024\n");
        return false;
      }
      cmd.threads = static_cast<int>(n);
    } else if (a == "--log-level") {
      if (!(v = value("--log-level"))) return false;
      cmd.log_level = v;
      if (std::none_of(std::begin(kLogLevels), std::end(kLogLevels),
                       [&](const char* l) { return cmd.log_level == l; })) {
        std::fprintf(stderr,
                     "meridian: --log-level '%s' is not a level: use debug, info, warning or "
                     "error\n",
                     v);
        return false;
      }
    } else if (a == "--help" || a == "-h") {
      if (is_check) {
        checkUsage(stdout);
      } else {
        usage(stdout);
      }
      std::exit(0);
    } else if (a == "--version" || a == "-V") {
      std::printf("meridian %s\n", MERIDIAN_VERSION);
      std::exit(0);
    } else {
      std::fprintf(stderr, "meridian: unknown argument '%s' (see --help)\n", a.c_str());
      return false;
    }
  }
  return true;
}

int check(const CommandLine& cmd) {
  if (cmd.config_file.empty() && cmd.zones.empty()) {
    std::fprintf(stderr,
                 "meridian check: nothing to check: give --config FILE and/or --zone NAME=FILE "
                 "(see meridian check --help)\n");
    return 2;
  }
  auto cfg = meridian::app::loadConfig(cmd);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  int errors = 0;
  std::vector<std::shared_ptr<const meridian::zones::Zone>> zones;
  for (const auto& z : cfg->zones) {
    auto loaded = meridian::zones::loadZoneFile(z.name, z.file);
    if (!loaded) {
      // Every error of the file, one per line, then how many.
      const std::string& m = loaded.error().message;
      std::fprintf(stderr, "%s\n", m.c_str());
      const auto count = 1 + std::count(m.begin(), m.end(), '\n');
      std::fprintf(stderr, "%s: %ld error%s, not loaded\n", z.name.c_str(),
                   static_cast<long>(count), count == 1 ? "" : "s");
      ++errors;
      continue;
    }
    for (const auto& w : loaded->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%s: serial %u, %zu records, OK\n", z.name.c_str(), loaded->zone->serial(),
                loaded->zone->recordCount());
    zones.push_back(loaded->zone);
  }
  // Every database the configuration names is opened and walked, as the server will at start-up
  // or on its next reload, even when no service uses it yet: a corrupt file is found now.
  std::shared_ptr<const meridian::georoute::GeoDatabase> dbs[2];
  const std::string* paths[2] = {&cfg->steering.geoip, &cfg->steering.asn_database};
  const char* keys[2] = {"geoip.database", "geoip.asn_database"};
  for (int i = 0; i < 2; ++i) {
    if (paths[i]->empty()) continue;
    auto db = meridian::georoute::GeoDatabase::open(*paths[i]);
    if (!db) {
      std::fprintf(stderr, "%s: %s\n", keys[i], db.error().message.c_str());
      ++errors;
      continue;
    }
    dbs[i] = *db;
    std::printf("geoip %s: %s, %zu distinct records, OK\n", dbs[i]->path().c_str(),
                dbs[i]->type().c_str(), dbs[i]->recordCount());
  }
  if (errors == 0 && !cfg->steering.empty()) {
    const meridian::zones::ZoneSet zone_set(zones);
    auto compiled = meridian::georoute::compileSteering(
        cfg->steering, meridian::server::zoneLocator(zone_set), dbs[0], dbs[1]);
    if (!compiled) {
      std::fprintf(stderr, "%s\n", compiled.error().message.c_str());
      ++errors;
    } else {
      for (const auto& w : compiled->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      const auto& set = *compiled->services;
      // Counted as `meridianctl status` counts them: probed slots apart from unchecked endpoints.
      const auto checked =
          std::count_if(compiled->targets.begin(), compiled->targets.end(),
                        [](const meridian::georoute::HealthTarget& t) { return t.checked; });
      std::printf(
          "steering: %zu service(s), %zu region(s), %ld health target(s), %ld unchecked "
          "endpoint(s), OK\n",
          set.services.size(), set.regions.size(), static_cast<long>(checked),
          static_cast<long>(compiled->targets.size()) - static_cast<long>(checked));
    }
  }
  if (errors == 0)
    std::printf("configuration %s OK\n",
                cmd.config_file.empty() ? "(flags)" : cmd.config_file.c_str());
  return errors == 0 ? 0 : 1;
}

// `meridian explain`: how steering decides for one client, step by step, with the configuration's
// zones, GeoIP database and policies. Health is taken as all up unless --down names endpoints.
int explain(int argc, char** argv) {
  CommandLine cmd;
  std::string client_text, qname, qtype_text = "A";
  std::vector<std::string> down;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) {
      cmd.config_file = argv[++i];
    } else if (a == "--client" && i + 1 < argc) {
      client_text = argv[++i];
    } else if (a == "--set" && i + 1 < argc) {
      cmd.sets.emplace_back(argv[++i]);
    } else if (a == "--down" && i + 1 < argc) {
      down.emplace_back(argv[++i]);
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: meridian explain --config FILE --client IP[/PREFIX] NAME [A|AAAA|CNAME]\n"
          "                        [--down LABEL|ADDRESS]... [--set KEY=VALUE]...\n"
          "Shows step by step how steering answers NAME for the client (IP/PREFIX: as ECS),\n"
          "with every health-checked endpoint up except those named by --down.\n");
      return 0;
    } else if (qname.empty() && a[0] != '-') {
      qname = a;
    } else if (a[0] != '-') {
      qtype_text = a;
    } else {
      std::fprintf(stderr, "meridian explain: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (client_text.empty() || qname.empty()) {
    std::fprintf(
        stderr, "usage: meridian explain --config FILE --client IP[/PREFIX] NAME [A|AAAA|CNAME]\n");
    return 2;
  }
  auto cfg = meridian::app::loadConfig(cmd);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  std::vector<std::shared_ptr<const meridian::zones::Zone>> zones;
  for (const auto& z : cfg->zones) {
    auto loaded = meridian::zones::loadZoneFile(z.name, z.file);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      return 1;
    }
    zones.push_back(loaded->zone);
  }
  const meridian::zones::ZoneSet zone_set(zones);
  auto compiled =
      meridian::georoute::loadSteering(cfg->steering, meridian::server::zoneLocator(zone_set));
  if (!compiled) {
    std::fprintf(stderr, "%s\n", compiled.error().message.c_str());
    return 1;
  }
  // An entry that never matches (country "UK") is often why a trace looks wrong: say so here too.
  for (const auto& w : compiled->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  meridian::healthcheck::StateTable health;
  health.targets.resize(compiled->targets.size());
  for (const auto& d : down) {
    bool matched = false;
    for (size_t i = 0; i < compiled->targets.size(); ++i) {
      if (compiled->targets[i].address == meridian::georoute::canonicalAddress(d) ||
          compiled->targets[i].label == d) {
        health.targets[i].up = false;
        matched = true;
      }
    }
    if (!matched)
      std::fprintf(stderr, "warning: --down %s matches no checked endpoint\n", d.c_str());
  }
  // The same steps as the running server's explain (control_service.h), with this health.
  const meridian::healthcheck::Verdicts verdicts(health);
  auto e = meridian::app::explainQuery(zone_set, compiled->services.get(), verdicts,
                                       {qname, qtype_text, client_text});
  if (!e) {
    std::fprintf(stderr, "%s\n", e.error().message.c_str());
    return 2;
  }
  std::fputs(meridian::app::formatExplanation(*e).c_str(), stdout);
  return e->decision == meridian::georoute::Decision::Kind::kServFail ? 1 : 0;
}

int mmdb(int argc, char** argv) {
  if (argc != 5 || std::strcmp(argv[2], "build") != 0) {
    std::fprintf(stderr,
                 "usage: meridian mmdb build NETWORKS.csv OUT.mmdb\n"
                 "CSV columns: network,region,country,continent,latitude,longitude,asn\n");
    return 2;
  }
  auto r = meridian::tools::buildMmdbFromCsv(argv[3], argv[4]);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return 1;
  }
  std::printf("wrote %s: %zu networks\n", argv[4], *r);
  return 0;
}

// `meridian api hash-key [SECRET]`: the stored form of an API key (api/auth.h). Without SECRET
// it reads one line from stdin, which keeps the secret out of shell history and `ps`.
int apiCommand(int argc, char** argv) {
  if (argc < 3 || argc > 4 || std::strcmp(argv[2], "hash-key") != 0) {
    std::fprintf(stderr, "usage: meridian api hash-key [SECRET]\n");
    return 2;
  }
  std::string secret;
  if (argc == 4) {
    secret = argv[3];
  } else if (!std::getline(std::cin, secret)) {
    secret.clear();
  }
  if (secret.empty()) {
    std::fprintf(stderr, "meridian api hash-key: the secret is empty\n");
    return 2;
  }
  std::printf("%s\n", meridian::api::hashSecret(secret).c_str());
  return 0;
}

// `meridian resolve`: one question resolved iteratively from the root hints with the resolver's
// own engine, printed as zone-file lines (a debugging tool, like `drill -T` or `unbound-host`).
int resolveCommand(int argc, char** argv) {
  const char* kUsage =
      "usage: meridian resolve [--root-hints FILE] [--no-qname-minimisation] [--timeout MS]\n"
      "                        NAME [TYPE]\n"
      "  --root-hints FILE         root name servers (default /usr/share/dns/root.hints)\n"
      "  --no-qname-minimisation   send the full name to every server (RFC 9156 off)\n"
      "  --timeout MS              one query's timeout (default 1500)\n"
      "Exit status: 0 for an answer (NOERROR or NXDOMAIN), 1 for SERVFAIL, 2 for usage.\n";
  std::string hints_path = meridian::resolver::kDefaultRootHints;
  meridian::resolver::Limits limits;
  std::vector<std::string> pos;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--root-hints" && i + 1 < argc) {
      hints_path = argv[++i];
    } else if (a == "--no-qname-minimisation") {
      limits.qname_minimisation = false;
    } else if (a == "--timeout" && i + 1 < argc) {
      limits.timeout_ms = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
      if (limits.timeout_ms == 0) {
        std::fputs(kUsage, stderr);
        return 2;
      }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "meridian resolve: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.empty() || pos.size() > 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  meridian::dns::NameBuf name;
  std::string qn = pos[0];
  if (qn.empty() || qn.back() != '.') qn.push_back('.');
  if (!meridian::dns::fromText(qn, name)) {
    std::fprintf(stderr, "meridian resolve: '%s' is not a domain name\n", pos[0].c_str());
    return 2;
  }
  uint16_t qtype = meridian::dns::rrtype::kA;
  if (pos.size() == 2) {
    qtype = 0;
    for (uint32_t t = 1; t <= 65535 && qtype == 0; ++t) {
      if (strcasecmp(meridian::zones::typeToText(static_cast<uint16_t>(t)).c_str(),
                     pos[1].c_str()) == 0) {
        qtype = static_cast<uint16_t>(t);
      }
    }
    if (qtype == 0) {
      std::fprintf(stderr, "meridian resolve: unknown type '%s'\n", pos[1].c_str());
      return 2;
    }
  }
  auto hints = meridian::resolver::loadRootHints(hints_path, /*ipv6=*/false);
  if (!hints) {
    std::fprintf(stderr, "meridian resolve: %s\n", hints.error().message.c_str());
    return 1;
  }
  boost::asio::io_context io;
  meridian::resolver::AsioTransport transport(io);
  meridian::resolver::Iterator iterator(transport, limits, std::move(*hints));
  meridian::resolver::Outcome result;
  const uint64_t t0 = transport.nowMs();
  iterator.resolve(std::string(reinterpret_cast<const char*>(name.data), name.length), qtype,
                   meridian::dns::rrclass::kIN,
                   [&](const meridian::resolver::Outcome& r) { result = r; });
  io.run();
  const uint64_t ms = transport.nowMs() - t0;
  const char* rc = result.rcode == 0 ? "NOERROR" : result.rcode == 3 ? "NXDOMAIN" : "SERVFAIL";
  std::printf(";; %s, %d upstream queries, %llu ms\n", rc, result.upstream_queries,
              static_cast<unsigned long long>(ms));
  auto print = [](const meridian::resolver::Record& r) {
    std::printf("%s\t%u\tIN\t%s\t%s\n",
                meridian::dns::toText(reinterpret_cast<const uint8_t*>(r.owner.data())).c_str(),
                r.ttl, meridian::zones::typeToText(r.type).c_str(),
                meridian::zones::rdataToText(
                    r.type, {reinterpret_cast<const uint8_t*>(r.rdata.data()), r.rdata.size()})
                    .c_str());
  };
  for (const auto& r : result.answer) print(r);
  if (!result.authority.empty()) std::printf(";; authority\n");
  for (const auto& r : result.authority) print(r);
  if (result.ede != meridian::resolver::ede::kNone) {
    std::printf(";; EDE %u: %s\n", result.ede, result.ede_text.c_str());
  }
  return result.rcode == meridian::dns::rcode::kServFail ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "resolve") == 0) return resolveCommand(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "api") == 0) return apiCommand(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "explain") == 0) return explain(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "mmdb") == 0) return mmdb(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "config-reference") == 0) {
    // docs/configuration.md is this output (tests/unit/app/config_schema_test.cc compares them);
    // `--format man` the man page meridian.toml(5) that the package installs.
    if (argc == 4 && std::strcmp(argv[2], "--format") == 0 && std::strcmp(argv[3], "man") == 0) {
      std::fputs(meridian::app::configManPage(MERIDIAN_VERSION).c_str(), stdout);
      return 0;
    }
    if (argc != 2 && !(argc == 4 && std::strcmp(argv[2], "--format") == 0 &&
                       std::strcmp(argv[3], "markdown") == 0)) {
      std::fprintf(stderr, "usage: meridian config-reference [--format markdown|man]\n");
      return 2;
    }
    std::fputs(meridian::app::configReference().c_str(), stdout);
    return 0;
  }
  CommandLine cmd;
  const bool is_check = argc > 1 && std::strcmp(argv[1], "check") == 0;
  if (!parseArgs(argc, argv, is_check ? 2 : 1, is_check, cmd)) return 2;
  if (is_check) return check(cmd);

  auto cfg = meridian::app::loadConfig(cmd);
  if (!cfg) {
    // Through the log (its default target, auto) so that under systemd the journal records it as
    // an error.
    meridian::log::error(cfg.error().message);
    return 1;
  }
  meridian::app::applyLogging(cmd, *cfg);
  meridian::app::Runtime runtime(cmd, std::move(*cfg));
  return runtime.run();
}
