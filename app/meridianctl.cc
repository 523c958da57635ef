// meridianctl: talks to a running meridian over its local control socket (control.socket).
//   meridianctl [--socket PATH] reload|status|metrics|health|override WHAT MODE|stop
//   (WHAT: an address, a slot label, region:NAME, pool:SERVICE/REGION or service:NAME)
//   meridianctl audit verify FILE | audit show FILE [filters]   (local: reads the audit log file)
//   meridianctl --api URL [--key KEY] [--json] health|explain NAME [TYPE] CLIENT|reload|metrics
//   (over the management HTTP API instead of the socket; meridianctl_api.h)
//   meridianctl --version
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "app/meridianctl_api.h"
#include "control/audit.h"

namespace {

const char kAuditUsage[] =
    "usage: meridianctl audit verify FILE\n"
    "       meridianctl audit show FILE [--zone Z] [--key K] [--since T] [--until T] [--limit N]\n"
    "                                   [--json]\n"
    "  verify   checks the hash chain and the head file (FILE.head); exit 0 intact, 1 tampered\n"
    "           (the first bad line is named), 2 usage or I/O error\n"
    "  show     the entries, oldest first; T is RFC 3339 UTC (2026-12-01T18:00:00Z, or a date)\n"
    "           or Unix seconds; --limit keeps the last N matches; --json prints the log lines\n";

// `meridianctl audit ...`: works on the file itself, no server needed.
int auditCommand(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kAuditUsage, stdout);
    return 0;
  }
  if (args.size() < 2 || (args[0] != "verify" && args[0] != "show")) {
    std::fputs(kAuditUsage, stderr);
    return 2;
  }
  const std::string& path = args[1];
  if (args[0] == "verify") {
    if (args.size() != 2) {
      std::fputs(kAuditUsage, stderr);
      return 2;
    }
    auto r = meridian::control::verify(path);
    if (!r) {
      std::fprintf(stderr, "meridianctl: %s\n", r.error().message.c_str());
      return 2;
    }
    for (const auto& n : r->notes) std::printf("note: %s\n", n.c_str());
    if (!r->ok) {
      if (r->bad_line > 0) {
        std::printf("TAMPERED %s line %llu: %s\n", path.c_str(),
                    static_cast<unsigned long long>(r->bad_line), r->message.c_str());
      } else {
        std::printf("TAMPERED %s: %s\n", path.c_str(), r->message.c_str());
      }
      return 1;
    }
    std::printf("ok %s: %llu entries, chain and head intact\n", path.c_str(),
                static_cast<unsigned long long>(r->entries));
    return 0;
  }
  meridian::control::AuditFilter f;
  bool as_json = false;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--json") {
      as_json = true;
    } else if (a == "--zone" && has_value) {
      f.zone = args[++i];
    } else if (a == "--key" && has_value) {
      f.key = args[++i];
    } else if ((a == "--since" || a == "--until") && has_value) {
      const auto t = meridian::control::parseTime(args[++i]);
      if (!t) {
        std::fprintf(stderr, "meridianctl: %s: not a time: '%s'\n", a.c_str(), args[i].c_str());
        return 2;
      }
      (a == "--since" ? f.since_ms : f.until_ms) = *t;
    } else if (a == "--limit" && has_value &&
               args[i + 1].find_first_not_of("0123456789") == std::string::npos &&
               args[i + 1].size() < 10) {
      f.limit = std::stoul(args[++i]);
    } else {
      std::fprintf(stderr, "meridianctl: audit show: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  auto entries = meridian::control::readEntries(path, f);
  if (!entries) {
    std::fprintf(stderr, "meridianctl: %s\n", entries.error().message.c_str());
    return 2;
  }
  for (auto& e : *entries) {
    if (as_json) {
      std::printf("%s\n", meridian::control::encodeEntry(e).c_str());
      continue;
    }
    std::printf("%llu %s key=%s source=%s %s", static_cast<unsigned long long>(e.seq),
                meridian::control::formatTime(e.time_ms).c_str(), e.key.c_str(),
                e.source.empty() ? "-" : e.source.c_str(), e.operation.c_str());
    if (!e.zone.empty()) {
      std::printf(" %s serial %u -> %u", e.zone.c_str(), e.old_serial, e.new_serial);
    }
    if (!e.detail.empty()) std::printf(" (%s)", e.detail.c_str());
    std::printf("\n");
    for (const auto& l : e.removed) std::printf("  - %s\n", l.c_str());
    for (const auto& l : e.added) std::printf("  + %s\n", l.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  if (const char* env = std::getenv("MERIDIAN_SOCKET")) socket_path = env;
  std::string command;
  std::vector<std::string> words;
  std::string api_url, api_key;
  if (const char* env = std::getenv("MERIDIAN_API_KEY")) api_key = env;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "audit" && command.empty()) {
      return auditCommand(std::vector<std::string>(argv + i + 1, argv + argc));
    }
    if ((a == "--socket" || a == "-s") && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (a == "--api" && i + 1 < argc) {
      api_url = argv[++i];
    } else if (a == "--key" && i + 1 < argc) {
      api_key = argv[++i];
    } else if (a == "--json") {
      as_json = true;
    } else if (a == "--version" || a == "-V") {
      std::printf("meridianctl %s\n", MERIDIAN_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: meridianctl [--socket PATH] COMMAND\n"
          "       meridianctl --api URL [--key KEY] [--json] health|explain|reload|metrics\n"
          "       meridianctl --version\n"
          "  reload                 re-read configuration, zones and the GeoIP database; answers\n"
          "                         once the reload is published (one during another: coalesced)\n"
          "  status                 counters, zones, GeoIP and steering state\n"
          "  metrics                the counters as Prometheus text (what /metrics serves)\n"
          "  health                 every health-checked endpoint: verdict, RTT, override\n"
          "  override WHAT MODE     WHAT = target label or endpoint address (as `health` prints\n"
          "                         them), region:NAME, pool:SERVICE/REGION or service:NAME;\n"
          "                         MODE = force-up, force-down, drain or none\n"
          "  zones                  every zone: serial, records, file, loaded at, last error\n"
          "  explain NAME [TYPE] CLIENT-IP[/PREFIX]\n"
          "                         how the running server steers NAME for that client (a\n"
          "                         prefix is taken as ECS), with the live health verdicts\n"
          "  stop                   drain and exit\n"
          "  audit verify|show FILE the audit log, read locally (meridianctl audit --help)\n"
          "The socket is the server's control.socket (or $MERIDIAN_SOCKET).\n"
          "--api http://HOST:PORT: over the management API instead (health, explain, reload,\n"
          "metrics); the key is --key or $MERIDIAN_API_KEY; --json prints the API's JSON.\n");
      return 0;
    } else if (a[0] != '-' || !command.empty()) {
      command += (command.empty() ? "" : " ") + a;
      words.push_back(a);
    } else {
      std::fprintf(stderr, "meridianctl: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (command.empty()) {
    std::fprintf(
        stderr,
        "meridianctl: no command (reload, status, metrics, health, zones, override, explain, stop, "
        "audit; see "
        "--help)\n");
    return 2;
  }
  if (!api_url.empty()) return meridian::app::apiCommand(api_url, api_key, words, as_json);
  if (socket_path.empty()) {
    std::fprintf(stderr,
                 "meridianctl: no control socket: pass --socket PATH or set MERIDIAN_SOCKET\n");
    return 2;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "meridianctl: socket path too long\n");
    return 2;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "meridianctl: cannot connect to %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "meridianctl: write failed: %s\n", std::strerror(errno));
    return 1;
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  std::fputs(reply.c_str(), stdout);
  return reply.rfind("ok", 0) == 0 ? 0 : 1;
}
