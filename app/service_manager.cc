// The notification protocol of sd_notify(3) and the privilege drop of server.user (see
// service_manager.h). The protocol: one AF_UNIX datagram per state change, newline-separated
// KEY=VALUE assignments, to the path in $NOTIFY_SOCKET ('@' first: the abstract namespace).
#include "app/service_manager.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "core/log.h"

namespace meridian::app {

namespace {

// A positive decimal integer from the environment, or 0.
uint64_t envNumber(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (errno != 0 || *end != '\0') ? 0 : n;
}

std::string errnoText(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr && (s[0] == '/' || s[0] == '@'))
    address_ = s;
  // sd_watchdog_enabled(3): WATCHDOG_PID, when set, names the process the watchdog is for (a
  // child started by the service inherits the variables but is not watched).
  const uint64_t usec = envNumber("WATCHDOG_USEC");
  const uint64_t pid = envNumber("WATCHDOG_PID");
  if (usec > 0 && (pid == 0 || pid == static_cast<uint64_t>(::getpid())))
    watchdog_ = std::chrono::microseconds(usec / 2);
}

bool ServiceNotifier::notify(std::string_view state) {
  if (address_.empty()) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (address_.size() >= sizeof(sa.sun_path)) return false;
  std::memcpy(sa.sun_path, address_.data(), address_.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + address_.size();
  if (sa.sun_path[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract: the name's length counts, no terminating NUL
  } else {
    ++len;
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0 && ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&sa),
                                len) == static_cast<ssize_t>(state.size());
  if (!ok && !warned_) {
    warned_ = true;
    log::warning(errnoText("service manager notification to " + address_));
  }
  if (fd >= 0) ::close(fd);
  return ok;
}

void ServiceNotifier::ready(std::string_view status) {
  notify("READY=1\nSTATUS=" + std::string(status));
}

void ServiceNotifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

void ServiceNotifier::stopping() {
  stopWatchdog();
  notify("STOPPING=1\nSTATUS=stopping");
}

void ServiceNotifier::startWatchdog(boost::asio::io_context& io) {
  if (watchdog_.count() == 0 || address_.empty()) return;
  timer_ = std::make_unique<boost::asio::steady_timer>(io);
  log::info("watchdog: WATCHDOG=1 every " + std::to_string(watchdog_.count() / 1000) + " ms");
  kick();
}

void ServiceNotifier::stopWatchdog() {
  timer_.reset();
}

void ServiceNotifier::kick() {
  notify("WATCHDOG=1");
  // From the control loop: a loop that stops turning (a stuck reload publication, a deadlock)
  // stops the pings, and the manager restarts the service.
  timer_->expires_after(watchdog_);
  timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec && timer_) kick();
  });
}

Result<RunAs> resolveRunAs(const std::string& user, const std::string& group) {
  RunAs who;
  who.user = user;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (const int e = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
      e != 0 || found == nullptr) {
    return Error{"server.user: no such user '" + user + "'" +
                 (e != 0 ? std::string(" (") + std::strerror(e) + ")" : std::string())};
  }
  who.uid = pw.pw_uid;
  who.gid = pw.pw_gid;
  if (!group.empty()) {
    struct group gr {};
    struct group* g = nullptr;
    if (const int e = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &g);
        e != 0 || g == nullptr) {
      return Error{"server.group: no such group '" + group + "'"};
    }
    who.gid = gr.gr_gid;
  }
  // A process that is not root cannot take another identity: say so now rather than fail later.
  if (::geteuid() != 0 && (::geteuid() != who.uid || ::getegid() != who.gid)) {
    return Error{"server.user is '" + user + "'" +
                 (group.empty() ? "" : ", server.group '" + group + "'") + " (uid " +
                 std::to_string(who.uid) + ", gid " + std::to_string(who.gid) +
                 ") but Meridian runs as uid " + std::to_string(::geteuid()) + ", gid " +
                 std::to_string(::getegid()) +
                 ", not root: it cannot switch users (start it as root, or remove server.user)"};
  }
  return who;
}

bool needsSwitch(const RunAs& who) {
  return ::geteuid() == 0 && who.uid != 0;
}

namespace {

uid_t g_uid = 0;
gid_t g_gid = 0;
int g_chown_errno = 0;

int chownEntry(const char* path, const struct stat* st, int, FTW*) {
  if ((st->st_uid != g_uid || st->st_gid != g_gid) && ::lchown(path, g_uid, g_gid) != 0)
    g_chown_errno = errno;
  return g_chown_errno == 0 ? 0 : 1;
}

// Every capability set of this thread is empty (capget: permitted, effective, inheritable).
bool noCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  for (const auto& d : data) {
    if (d.permitted != 0 || d.effective != 0 || d.inheritable != 0) return false;
  }
  return true;
}

}  // namespace

Result<void> dropPrivileges(const RunAs& who, const std::string& state_dir,
                            const std::string& control_socket) {
  if (!state_dir.empty()) {
    std::error_code ec;
    if (std::filesystem::create_directories(state_dir, ec); ec)
      return Error{"control.state_dir " + state_dir + ": " + ec.message()};
    ::chmod(state_dir.c_str(), 0750);
    g_uid = who.uid;
    g_gid = who.gid;
    g_chown_errno = 0;
    // FTW_PHYS: a symbolic link is changed itself (lchown), never what it points to.
    if (::nftw(state_dir.c_str(), chownEntry, 16, FTW_PHYS) != 0) {
      errno = g_chown_errno != 0 ? g_chown_errno : errno;
      return Error{errnoText("control.state_dir " + state_dir + ": giving it to " + who.user)};
    }
  }
  if (!control_socket.empty() && ::lchown(control_socket.c_str(), who.uid, who.gid) != 0)
    return Error{errnoText("control socket " + control_socket + ": giving it to " + who.user)};
  // Groups first, while still root: initgroups() needs CAP_SETGID, setuid() gives it up.
  if (::initgroups(who.user.c_str(), who.gid) != 0) return Error{errnoText("initgroups")};
  if (::setresgid(who.gid, who.gid, who.gid) != 0) return Error{errnoText("setresgid")};
  if (::setresuid(who.uid, who.uid, who.uid) != 0) return Error{errnoText("setresuid")};
  // With every uid non-zero (and SECBIT_KEEP_CAPS unset) the kernel has emptied the permitted,
  // effective and ambient sets; check rather than trust.
  if (::setresuid(0, 0, 0) == 0) return Error{"server.user: root could be regained; stopping"};
  if (!noCapabilities()) return Error{"server.user: capabilities left after the switch; stopping"};
  return {};
}

}  // namespace meridian::app
