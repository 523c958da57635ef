// meridian: the server binary. `meridian [options]` serves; `meridian check` validates the
// configuration and every zone file and exits non-zero with file:line on the first problem.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app/config.h"
#include "app/runtime.h"
#include "core/log.h"
#include "zones/loader.h"

using meridian::app::CommandLine;

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: meridian [--config FILE] [--listen ADDR:PORT]... [--zone NAME=FILE]...\n"
               "                [--threads N] [--set KEY=VALUE]... [--log-level LEVEL]\n"
               "       meridian check [--config FILE] [--zone NAME=FILE]... [--set KEY=VALUE]...\n"
               "\n"
               "  --listen ADDR:PORT  address to serve on, UDP and TCP (repeatable; \"[::1]:53\" for IPv6)\n"
               "  --zone NAME=FILE    serve zone NAME from an RFC 1035 zone file (repeatable)\n"
               "  --threads N         worker threads (default: CPUs in the affinity mask)\n"
               "  --config FILE       TOML configuration; flags override it\n"
               "  --set KEY=VALUE     override a configuration key, e.g. --set server.nsid=ns1\n"
               "\n"
               "SIGHUP (or `meridianctl reload`) reloads configuration and zones; SIGTERM drains and exits.\n\n%s",
               meridian::app::configKeysHelp());
}

bool parseArgs(int argc, char** argv, int first, CommandLine& cmd, std::string& log_level) {
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
      log_level = v;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "meridian: unknown argument '%s' (see --help)\n", a.c_str());
      return false;
    }
  }
  return true;
}

void setLogLevel(const std::string& level) {
  using meridian::log::Level;
  if (level == "debug") meridian::log::setLevel(Level::kDebug);
  if (level == "info") meridian::log::setLevel(Level::kInfo);
  if (level == "warning") meridian::log::setLevel(Level::kWarning);
  if (level == "error") meridian::log::setLevel(Level::kError);
}

int check(const CommandLine& cmd) {
  auto cfg = meridian::app::loadConfig(cmd);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  int errors = 0;
  for (const auto& z : cfg->zones) {
    auto loaded = meridian::zones::loadZoneFile(z.name, z.file);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      ++errors;
      continue;
    }
    for (const auto& w : loaded->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%s: serial %u, %zu records, OK\n", z.name.c_str(), loaded->zone->serial(),
                loaded->zone->recordCount());
  }
  if (errors == 0) std::printf("configuration %s OK\n", cmd.config_file.empty() ? "(flags)" : cmd.config_file.c_str());
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine cmd;
  std::string log_level;
  const bool is_check = argc > 1 && std::strcmp(argv[1], "check") == 0;
  if (!parseArgs(argc, argv, is_check ? 2 : 1, cmd, log_level)) return 2;
  if (is_check) return check(cmd);

  auto cfg = meridian::app::loadConfig(cmd);
  if (!cfg) {
    std::fprintf(stderr, "meridian: %s\n", cfg.error().message.c_str());
    return 1;
  }
  setLogLevel(log_level.empty() ? cfg->log_level : log_level);
  meridian::app::Runtime runtime(cmd, std::move(*cfg));
  return runtime.run();
}
