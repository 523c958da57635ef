// meridianctl: talks to a running meridian over its local control socket (control.socket), or
// over the management HTTP API (--api URL; the commands are in meridianctl_api.h), and reads the
// audit log file locally (audit verify|show FILE). One exit scheme for all (ctl::Exit): 0 done, 1
// the server refused, 2 usage or bad input, 3 no connection. The usage text is kUsage below.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "app/meridianctl_api.h"
#include "app/meridianctl_http.h"
#include "control/audit.h"

namespace {

const char kAuditUsage[] =
    "usage: meridianctl audit verify FILE\n"
    "       meridianctl audit show FILE [--zone Z] [--key K] [--since T] [--until T] [--limit N]\n"
    "                                   [--json]\n"
    "       meridianctl --api URL audit [--zone Z] [--key K] [--since T] [--until T] [--limit N]\n"
    "  verify   checks the hash chain and the head file (FILE.head); exit 0 intact, 1 tampered\n"
    "           (the first bad line is named), 2 usage or I/O error\n"
    "  show     the entries, oldest first; T is RFC 3339 UTC (2026-12-01T18:00:00Z, or a date)\n"
    "           or Unix seconds; --limit keeps the last N matches; --json prints the log lines\n"
    "  --api    the same filters on the server's log (GET /api/v1/audit); options before\n"
    "           `audit` are meridianctl's (--api, --key KEY = the API key), after it the "
    "filters'\n";

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
    } else {
      std::fputs(meridian::app::auditText(e).c_str(), stdout);
    }
  }
  return 0;
}

}  // namespace

namespace {

using namespace meridian::app::ctl;

const char kUsage[] =
    "usage: meridianctl [--socket PATH] COMMAND               over the control socket\n"
    "       meridianctl --api URL [--key KEY | --key-file FILE] [--cacert FILE] [--timeout S]\n"
    "                   [--json] COMMAND                      over the management API\n"
    "       meridianctl audit verify|show FILE ...            the audit log file, read here\n"
    "       meridianctl --version\n"
    "commands over the control socket (--socket PATH or $MERIDIAN_SOCKET):\n"
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
    "  audit verify|show FILE the audit log, read locally (meridianctl audit --help)\n";

const char kOptions[] =
    "options:\n"
    "  --api URL        http://HOST[:PORT] or https://HOST[:PORT] (port 8053 by default), or\n"
    "                   $MERIDIAN_API_URL; --socket on the command line wins over it\n"
    "  --key KEY        the API key (X-API-Key); visible in `ps` to other users, so prefer\n"
    "  --key-file FILE  its first line (the file readable by you only), or $MERIDIAN_API_KEY\n"
    "  --cacert FILE    PEM CA certificate(s) that sign the server's certificate (for https;\n"
    "                   default: the system's roots); the certificate's name or IP address\n"
    "                   must match HOST. There is no switch to skip the check: for a self-signed\n"
    "                   certificate pass the certificate itself as --cacert\n"
    "  --timeout S      seconds allowed for each step of a request (default 60)\n"
    "  --json           the API's JSON instead of tables (watch: one JSON object per line)\n"
    "  --               the rest are words, even when they start with '-'\n"
    "exit status: 0 done; 1 the server refused (its status and error on stderr), or reported a\n"
    "failure (a reload with a failed zone, a record to remove that is not there); 2 usage error\n"
    "or bad input (a zone file or record that does not parse: nothing was sent); 3 cannot\n"
    "connect (name, connection, TLS handshake or certificate, or a transport error)\n";

// The commands that exist over the API only.
bool apiOnly(const std::vector<std::string>& w) {
  static const char* const kOnly[] = {"records",   "services", "regions",
                                      "overrides", "watch",    "version"};
  for (const char* c : kOnly) {
    if (w[0] == c) return true;
  }
  return w[0] == "zones" && w.size() > 1;
}

bool readKeyFile(const std::string& path, std::string& key) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    std::fprintf(stderr, "meridianctl: --key-file %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  char buf[4096];
  key = std::fgets(buf, sizeof buf, f) != nullptr ? buf : "";
  std::fclose(f);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) {
    std::fprintf(stderr, "meridianctl: --key-file %s: the first line is empty\n", path.c_str());
    return false;
  }
  return true;
}

int socketCommand(const std::string& socket_path, const std::string& command) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "meridianctl: socket path too long\n");
    return kExitUsage;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "meridianctl: cannot connect to %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    return kExitUnreachable;
  }
  const std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "meridianctl: write failed: %s\n", std::strerror(errno));
    return kExitUnreachable;
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  std::fputs(reply.c_str(), stdout);
  return reply.rfind("ok", 0) == 0 ? kExitOk : kExitRefused;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path, api_url, api_key, key_file, cacert, timeout;
  bool socket_given = false, as_json = false, words_only = false;
  std::vector<std::string> words;
  const auto value = [&](int& i, std::string& out) {
    if (i + 1 >= argc) return false;
    out = argv[++i];
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (words_only || a.empty() || a[0] != '-') {
      if (words.empty() && a == "audit") {
        words.assign(argv + i, argv + argc);
        break;
      }
      words.push_back(a);
    } else if (a == "--") {
      words_only = true;
    } else if ((a == "--socket" || a == "-s") && value(i, socket_path)) {
      socket_given = true;
    } else if ((a == "--api" && value(i, api_url)) || (a == "--key" && value(i, api_key)) ||
               (a == "--key-file" && value(i, key_file)) || (a == "--cacert" && value(i, cacert)) ||
               (a == "--timeout" && value(i, timeout))) {
    } else if (a == "--socket" || a == "-s" || a == "--api" || a == "--key" || a == "--key-file" ||
               a == "--cacert" || a == "--timeout") {
      std::fprintf(stderr, "meridianctl: %s needs a value\n", a.c_str());
      return kExitUsage;
    } else if (a == "--json") {
      as_json = true;
    } else if (a == "--version" || a == "-V") {
      std::printf("meridianctl %s\n", MERIDIAN_VERSION);
      return kExitOk;
    } else if (a == "--help" || a == "-h") {
      std::printf("%s%s%s", kUsage, meridian::app::kApiUsage, kOptions);
      return kExitOk;
    } else if (!words.empty()) {
      words.push_back(a);  // the command's own option (--dry-run, --count N, ...)
    } else {
      std::fprintf(stderr, "meridianctl: unexpected argument '%s' (meridianctl --help)\n",
                   a.c_str());
      return kExitUsage;
    }
  }
  if (words.empty()) {
    std::fprintf(stderr,
                 "meridianctl: no command (reload, status, metrics, health, zones, override, "
                 "explain, stop, audit; over the API also records, services, overrides, watch, "
                 "...; see --help)\n");
    return kExitUsage;
  }
  if (socket_given && !api_url.empty()) {
    std::fprintf(stderr, "meridianctl: --api or --socket, not both\n");
    return kExitUsage;
  }
  if (api_url.empty() && !socket_given) {
    if (const char* env = std::getenv("MERIDIAN_API_URL")) api_url = env;
  }
  if (words[0] == "audit") {
    std::vector<std::string> rest(words.begin() + 1, words.end());
    const bool local = !rest.empty() && (rest[0] == "verify" || rest[0] == "show" ||
                                         rest[0] == "--help" || rest[0] == "-h");
    if (as_json && !rest.empty() && rest[0] == "show") rest.emplace_back("--json");
    if (local || api_url.empty() || socket_given) return auditCommand(rest);
  }
  if (!api_url.empty() && !socket_given) {
    ApiTarget t;
    std::string error;
    if (!parseApiUrl(api_url, t, error)) {
      std::fprintf(stderr, "meridianctl: %s\n", error.c_str());
      return kExitUsage;
    }
    if (!api_key.empty()) {
      t.key = api_key;
    } else if (!key_file.empty()) {
      if (!readKeyFile(key_file, t.key)) return kExitUsage;
    } else if (const char* env = std::getenv("MERIDIAN_API_KEY")) {
      t.key = env;
    }
    if (t.key.empty()) {
      std::fprintf(stderr,
                   "meridianctl: --api needs a key: --key-file FILE, $MERIDIAN_API_KEY or --key "
                   "KEY\n");
      return kExitUsage;
    }
    if (!cacert.empty()) {
      if (::access(cacert.c_str(), R_OK) != 0) {
        std::fprintf(stderr, "meridianctl: --cacert %s: %s\n", cacert.c_str(),
                     std::strerror(errno));
        return kExitUsage;
      }
      t.cacert = cacert;
    }
    if (!timeout.empty()) {
      if (timeout.size() > 6 || timeout.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(timeout) == 0) {
        std::fprintf(stderr, "meridianctl: --timeout: a number of seconds, not '%s'\n",
                     timeout.c_str());
        return kExitUsage;
      }
      t.timeout = std::chrono::seconds(std::stoi(timeout));
    }
    return meridian::app::apiCommand(t, words, as_json);
  }
  if (apiOnly(words)) {
    std::fprintf(stderr,
                 "meridianctl: %s works over the API: pass --api URL (or set MERIDIAN_API_URL)\n",
                 words[0].c_str());
    return kExitUsage;
  }
  if (socket_path.empty()) {
    if (const char* env = std::getenv("MERIDIAN_SOCKET")) socket_path = env;
  }
  if (socket_path.empty()) {
    std::fprintf(stderr,
                 "meridianctl: no control socket: pass --socket PATH or set MERIDIAN_SOCKET (or "
                 "--api URL)\n");
    return kExitUsage;
  }
  std::string command;
  for (const auto& w : words) command += (command.empty() ? "" : " ") + w;
  return socketCommand(socket_path, command);
}
