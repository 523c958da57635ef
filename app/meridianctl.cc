// meridianctl: talks to a running meridian over its local control socket (control.socket).
//   meridianctl [--socket PATH] reload|status|health|override WHAT MODE|stop
//   (WHAT: an address, a slot label, region:NAME, pool:SERVICE/REGION or service:NAME)
//   meridianctl --version
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::string socket_path;
  if (const char* env = std::getenv("MERIDIAN_SOCKET")) socket_path = env;
  std::string command;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--socket" || a == "-s") && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (a == "--version" || a == "-V") {
      std::printf("meridianctl %s\n", MERIDIAN_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: meridianctl [--socket PATH] COMMAND\n"
          "       meridianctl --version\n"
          "  reload                 re-read configuration, zones and the GeoIP database; answers\n"
          "                         once the reload is published (one during another: coalesced)\n"
          "  status                 counters, zones, GeoIP and steering state\n"
          "  health                 every health-checked endpoint: verdict, RTT, override\n"
          "  override WHAT MODE     WHAT = target label or endpoint address (as `health` prints\n"
          "                         them), region:NAME, pool:SERVICE/REGION or service:NAME;\n"
          "                         MODE = force-up, force-down, drain or none\n"
          "  zones                  every zone: serial, records, file, loaded at, last error\n"
          "  explain NAME [TYPE] CLIENT-IP[/PREFIX]\n"
          "                         how the running server steers NAME for that client (a\n"
          "                         prefix is taken as ECS), with the live health verdicts\n"
          "  stop                   drain and exit\n"
          "The socket is the server's control.socket (or $MERIDIAN_SOCKET).\n");
      return 0;
    } else if (a[0] != '-' || !command.empty()) {
      command += (command.empty() ? "" : " ") + a;
    } else {
      std::fprintf(stderr, "meridianctl: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (command.empty()) {
    std::fprintf(
        stderr,
        "meridianctl: no command (reload, status, health, zones, override, explain, stop; see "
        "--help)\n");
    return 2;
  }
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
