// What Meridian does for the program that started it: the systemd notification protocol
// (sd_notify(3): READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 as datagrams to $NOTIFY_SOCKET,
// written here rather than linked from libsystemd: the protocol is one sendmsg() of a few lines,
// and the server keeps no dependency on systemd), and the switch to an unprivileged user once
// the sockets are bound (server.user, server.group). Control thread only (the Runtime's loop);
// nothing here is on the query path.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace meridian::app {

// The service manager's notification socket, read from the environment at construction
// ($NOTIFY_SOCKET, $WATCHDOG_USEC, $WATCHDOG_PID). Without $NOTIFY_SOCKET every call does nothing.
class ServiceNotifier {
 public:
  ServiceNotifier();
  // True when a service manager listens ($NOTIFY_SOCKET set to a usable address).
  [[nodiscard]] bool active() const { return !address_.empty(); }
  // Sends `state` ("READY=1\nSTATUS=...") as one datagram; false (and logged once) on failure.
  bool notify(std::string_view state);
  // READY=1 with a STATUS= line: zones loaded, sockets bound (start-up, or the end of a reload).
  void ready(std::string_view status);
  // RELOADING=1 with MONOTONIC_USEC= (systemd 253's reload protocol; older ones ignore it).
  void reloading();
  void stopping();
  // Sends WATCHDOG=1 on `io` every half of $WATCHDOG_USEC (sd_watchdog_enabled(3)'s advice), when
  // the manager asked for it and for this process. Until stopWatchdog() or `io` stops.
  void startWatchdog(boost::asio::io_context& io);
  void stopWatchdog();
  // Half of $WATCHDOG_USEC, or zero when there is no watchdog for this process.
  [[nodiscard]] std::chrono::microseconds watchdogInterval() const { return watchdog_; }

 private:
  void kick();
  std::string address_;  // the socket path; a leading '@' is an abstract-namespace name
  std::chrono::microseconds watchdog_{0};
  std::unique_ptr<boost::asio::steady_timer> timer_;
  bool warned_ = false;
};

// The user and group that server.user / server.group name, resolved at start-up.
struct RunAs {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Resolves server.user (and server.group; empty = the user's primary group) and checks that this
// process can become it: not root and not that user already is an error (a non-root process
// cannot switch users). An unknown user or group is an error naming the key.
[[nodiscard]] Result<RunAs> resolveRunAs(const std::string& user, const std::string& group);

// Whether dropPrivileges() has anything to do (this process is root and not already `who`).
[[nodiscard]] bool needsSwitch(const RunAs& who);

// Gives `who` the state directory (when set; made if missing) and `paths` (the control socket),
// without following symbolic links, so the unprivileged server can write its journals, audit log
// and API zones there, and the socket stays its own; then sets the supplementary groups, the group
// and the user (real, effective and saved), and checks that no capability is left and root cannot
// be regained. Every thread of the process changes (glibc's set*id apply to all). Called once the
// listeners, the control socket and the API are bound.
[[nodiscard]] Result<void> dropPrivileges(const RunAs& who, const std::string& state_dir,
                                          const std::string& control_socket);

}  // namespace meridian::app
