// The control side of a running server: owns the configuration, loads zones, publishes the serving
// snapshot, runs the data-plane workers, and handles SIGHUP/SIGTERM and the local control socket.
// Everything here runs on the main thread's event loop; it is the only writer of snapshots.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "app/config.h"
#include "app/steering_config.h"
#include "core/snapshot.h"
#include "georoute/geoip.h"
#include "healthcheck/monitor.h"
#include "healthcheck/state.h"
#include "server/listener.h"
#include "server/pipeline.h"
#include "zones/loader.h"
#include "zones/zone.h"

namespace meridian::app {

struct LoadReport {
  int loaded = 0;     // zones (re)loaded from their files
  int unchanged = 0;  // files not modified since the last load
  int failed = 0;     // errors; the previous version (if any) keeps serving
  // Restart-only keys the reload found changed (restartOnlyChanges), one line each.
  std::vector<std::string> warnings;
  std::string text() const;
};

class Runtime {
 public:
  Runtime(CommandLine cmd, Config config);
  // Loads zones, binds sockets, serves until SIGTERM/SIGINT. Returns the process exit status.
  int run();

  // Re-reads configuration and zone files; a zone that fails keeps its previous version.
  LoadReport reload();
  [[nodiscard]] std::string status() const;

 private:
  struct LoadedZone {
    std::shared_ptr<const zones::Zone> zone;
    std::string file;
    std::time_t mtime = 0;
    off_t size = 0;
    ino_t inode = 0;
    long mtime_nsec = 0;  // two same-size edits within one second still count as a change
    std::vector<zones::SourceFile> includes;  // an edit to one of them reloads the zone too
  };
  LoadReport loadZones(const Config& config);
  // Opens the GeoIP database if its file changed; a failure keeps the previous one.
  bool loadGeo(const Config& config);
  // Builds the zone set and the steering tables from what is loaded and publishes them together;
  // steering that fails to compile keeps its previous version (and is fatal at start-up).
  bool publish(bool startup = false);
  void watchGeo();
  // Rebuilds the Monitor and its Verdicts table when the set of targets changed (adopting what the
  // old one knew); publish() calls it before publishing, so services and table go out together.
  void rebuildHealth();
  // Starts the probes of a Monitor that rebuildHealth() made.
  void startHealth();
  // Frees the retired snapshots every worker has moved past; re-arms a timer while any wait.
  void reclaimSnapshots();
  [[nodiscard]] std::string overrideCommand(const std::string& args);
  // Binds control.socket; false (start-up fails) when the path is held by a live process or is
  // not a socket. Only a socket left by a dead process is replaced.
  [[nodiscard]] bool startControlSocket();
  // Unlinks the control socket if it is still the one this process bound (same device and inode).
  void removeControlSocket();
  void acceptControl();

  // First, so it is destroyed last: timers, sockets and the Monitor below are bound to it.
  boost::asio::io_context io_;
  CommandLine cmd_;
  Config config_;
  std::map<std::string, LoadedZone> zones_;  // by origin
  std::map<std::string, std::string> zone_errors_;
  Published<server::ServingState> state_;
  // A GeoIP database file and what was last loaded from it.
  struct GeoSlot {
    std::shared_ptr<const georoute::GeoDatabase> db;
    std::string path;
    std::time_t mtime = 0;
    off_t size = 0;
    std::string error;
  };
  bool loadDb(GeoSlot& slot, const std::string& path, const char* what);
  GeoSlot geo_;  // [geoip] database
  GeoSlot asn_;  // [geoip] asn_database
  std::shared_ptr<const georoute::ServiceSet> services_;
  std::vector<HealthTarget> targets_;
  std::string steering_error_;
  uint8_t cookie_secret_[16] = {};  // used when the configuration sets none
  std::unique_ptr<boost::asio::steady_timer> geo_timer_;
  std::unique_ptr<healthcheck::Monitor> monitor_;
  std::shared_ptr<healthcheck::Verdicts>
      verdicts_;  // monitor_'s hot table, in state_ with services_
  bool health_started_ = false;
  size_t health_checked_ = 0;
  std::unique_ptr<boost::asio::steady_timer> reclaim_timer_;
  bool reclaim_armed_ = false;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> control_;
  // What this process bound, for removeControlSocket(): reload may change control.socket, and
  // another process may have replaced the file meanwhile.
  std::string control_path_;
  dev_t control_dev_ = 0;
  ino_t control_ino_ = 0;
  std::string monitor_key_;
  std::vector<std::string> monitor_keys_;  // per target id of monitor_ (see targetKey)
  std::unique_ptr<server::Server> server_;
  std::time_t started_ = 0;
  uint64_t reloads_ = 0;
  // RRL as the workers' tables were made (at start-up): turning it on later, or resizing, waits
  // for a restart.
  bool rrl_started_ = false;
  uint32_t rrl_table_size_ = 0;
};

}  // namespace meridian::app
