// The control side of a running server: owns the configuration, loads zones, publishes the serving
// snapshot, runs the data-plane workers, and handles SIGHUP/SIGTERM and the local control socket.
// Everything here runs on the main thread's event loop (the control loop), the only writer of
// snapshots, except the heavy parts of a load: zone parsing (one job per changed zone, in
// parallel), opening and walking the GeoIP databases and compiling the steering run on a small
// core::WorkPool, and their results come back to the control loop to be published. So health
// probes and the control socket keep their pace during a big reload.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "app/config.h"
#include "app/control_service.h"
#include "app/service_manager.h"
#include "control/audit.h"
#include "core/reload_queue.h"
#include "core/snapshot.h"
#include "core/work_pool.h"
#include "georoute/compile.h"
#include "georoute/geoip.h"
#include "healthcheck/monitor.h"
#include "healthcheck/state.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "zones/content.h"
#include "zones/edit.h"
#include "zones/loader.h"
#include "zones/zone.h"

namespace meridian::app {

class ApiService;

class Runtime {
 public:
  Runtime(CommandLine cmd, Config config);
  ~Runtime();
  // Loads zones, binds sockets, serves until SIGTERM/SIGINT. Returns the process exit status.
  int run();

  // Re-reads configuration and zone files, off the control loop; a zone that fails keeps its
  // previous version. `done` (control loop) gets the report once the result is published. A request
  // made while a reload runs is coalesced into the one reload queued behind it (see
  // core/reload_queue.h). Control thread only.
  void requestReload(std::function<void(const LoadReport&)> done = {});
  // The Prometheus text (core/metrics.h) of the query path, health checks and reloads: what
  // `meridianctl metrics` prints and /metrics will serve.
  [[nodiscard]] std::string metrics() const;
  // Any thread: makes run() return (as SIGTERM does); a zone load under way is abandoned
  // (zones::LoadAbandoned), nothing of it published.
  void requestStop();
  // Any thread: runs `task` on the control loop (where the control service is used).
  void post(std::function<void()> task);
  // The operations on this server (control socket, API). Control thread only.
  [[nodiscard]] ControlService& control() { return service_; }
  // Tests: called on a pool thread before each zone file is parsed, with the zone's name (a test
  // blocks it to hold a reload in progress). Set before run().
  void setParseHook(std::function<void(const std::string& zone)> hook) {
    parse_hook_ = std::move(hook);
  }
  // Tests: called on a pool thread before each zone change is applied (ControlService::patchZone),
  // with the zone's name (a test blocks it to hold a change in progress). Control thread, or
  // before run().
  void setCommitHook(std::function<void(const std::string& zone)> hook) {
    commit_hook_ = std::move(hook);
  }

 private:
  friend class ControlService;  // reads the state below, drives reloads and overrides

  struct LoadedZone {
    std::shared_ptr<const zones::Zone> zone;
    // The editable content the zone was built from (the file's records as written): the next
    // reload of an edited file is diffed against it. Shared, never changed once made.
    std::shared_ptr<const zones::ZoneContent> content;
    std::time_t loaded_at = 0;
    std::string file;
    std::time_t mtime = 0;
    off_t size = 0;
    ino_t inode = 0;
    long mtime_nsec = 0;  // two same-size edits within one second still count as a change
    std::vector<zones::SourceFile> includes;  // an edit to one of them reloads the zone too
    // Which version of the zone's lane this is (edit_versions_ when it was made; 0: loaded from
    // its file outside a lane, at start or before the zone was first edited). A change is
    // acknowledged once the served version is this new or newer.
    uint64_t version = 0;
  };
  // A GeoIP database file and what was last loaded from it.
  struct GeoSlot {
    std::shared_ptr<const georoute::GeoDatabase> db;
    std::string path;
    std::time_t mtime = 0;
    off_t size = 0;
    std::string error;
  };
  // One load (start-up, reload, or a GeoIP file that changed) from its start on the control loop to
  // its publication; the pool jobs work on copies, their completions fill this in.
  struct LoadRun {
    uint64_t ticket = 0;
    bool startup = false;
    bool zones =
        true;       // re-read the configuration and look at every zone file (not for GeoIP alone)
    Config config;  // the configuration this load publishes
    LoadReport report;
    std::map<std::string, LoadedZone> next;  // by origin, as the zone jobs finish
    std::map<std::string, std::string> errors;
    std::vector<ZoneChange> changes;  // zones whose content changed, told once published
    // The edited zones (pending_zones_) this load publishes in place of their files.
    std::map<std::string, std::shared_ptr<const zones::Zone>> edited;
    std::set<std::string> removed;  // zones deleted through the service (removed_zones_)
    // Zones with a journal loaded for the first time (EditableZone::open): their change path.
    std::map<std::string, std::shared_ptr<zones::EditableZone>> recovered;
    bool services = false;   // API services changed (services_changed_): compile steering
    size_t outstanding = 0;  // pool jobs of the first stage (zones, GeoIP) still running
    GeoSlot geo, asn;
  };
  // ReloadQueue's start: reads the configuration, stats the zone files, and posts one pool job per
  // changed zone and one for the GeoIP databases.
  void beginLoad(uint64_t ticket);
  // The first stage is done: posts the compile job (zone set, steering) to the pool.
  void compileLoad();
  // On the control loop: swaps what the load made into the runtime and publishes one snapshot;
  // steering that fails to compile keeps its previous version (and is fatal at start-up).
  void applyLoad(std::shared_ptr<server::ServingState> state,
                 std::optional<Result<georoute::CompiledSteering>> steering);
  // Publishes the zones edited since the last load (pending_zones_), with the rest as they are:
  // a load that re-reads nothing (unless a reload is queued anyway), so the zone set, steering
  // and health table go out together as a reload's do. `done` once published.
  void publishEdits(std::function<void(const LoadReport&)> done);
  // Ends the running load with its report (waiters answered, a queued reload starts).
  void finishLoad(LoadReport report);
  // Opens the GeoIP database at `path` into `slot` if the file changed; a failure keeps the
  // previous one. Runs on a pool thread (on a copy of the slot).
  static bool loadDb(GeoSlot& slot, const std::string& path, const char* what);
  // Whether loadDb() would look at the file again (control loop: one stat()).
  static bool geoChanged(const GeoSlot& slot, const std::string& path);
  void watchGeo();
  // Rebuilds the Monitor and its Verdicts table when the set of targets changed (adopting what the
  // old one knew); publish() calls it before publishing, so services and table go out together.
  void rebuildHealth();
  // Starts the probes of a Monitor that rebuildHealth() made.
  void startHealth();
  // Frees the retired snapshots every worker has moved past; re-arms a timer while any wait.
  void reclaimSnapshots();
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
  GeoSlot geo_;  // [geoip] database
  GeoSlot asn_;  // [geoip] asn_database
  std::shared_ptr<const georoute::ServiceSet> services_;
  std::vector<georoute::HealthTarget> targets_;
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
  // The HTTP API (app/api_service.h), when [[api.key]] entries are configured.
  std::unique_ptr<ApiService> api_;
  ControlService service_{*this};
  // systemd's notification socket (READY, RELOADING, STOPPING, WATCHDOG), when started by it.
  ServiceNotifier notifier_;
  std::time_t started_ = 0;
  uint64_t reloads_ = 0;
  uint64_t loads_ok_ = 0, loads_failed_ = 0;  // finished loads, by whether anything failed
  server::MetricRegistry metric_names_;       // zones' and steering keys' metric slots
  // RRL as the workers' tables were made (at start-up): turning it on later, or resizing, waits
  // for a restart.
  bool rrl_started_ = false;
  uint32_t rrl_table_size_ = 0;

  // The change path (ControlService::patchZone). Each zone has a lane: the steps that read or
  // change its file, journal or EditableZone (a change's commit, a reload's look at the file, a
  // deletion) run one at a time in the order they arrived; the heavy part of a step (opening the
  // EditableZone, applying and building a change, journal fsync and write-back, parsing the
  // file) runs on pool_, which then owns the lane's EditableZone until its completion is back
  // on the control loop. Lanes of different zones run in parallel (the pool's two threads).
  struct ZoneLane {
    std::unique_ptr<zones::EditableZone> editable;  // opened by the zone's first change
    bool busy = false;                              // a step holds the lane
    std::deque<std::function<void()>> waiting;      // steps queued behind it, in arrival order
  };
  // Runs `step` on the control loop once the lane of `zone` is free (at once when it is); the
  // step holds the lane until it calls leaveLane(zone), which starts the next one.
  void enterLane(const std::string& zone, std::function<void()> step);
  void leaveLane(const std::string& zone);
  // A reload's step for one configured zone, in its lane: the version committed and not yet
  // published, the file if unchanged, or a parse on the pool (through the zone's EditableZone
  // when it has one, so the journal takes a hand edit as a diff).
  void loadZoneStep(uint64_t ticket, const ZoneConfig& zc);
  // One first-stage part of the load `ticket` is done (compileLoad once all are).
  void partDone(uint64_t ticket);
  std::map<std::string, ZoneLane> lanes_;
  uint64_t edit_versions_ = 0;
  std::function<void(const std::string&)> commit_hook_;
  // The versions the lanes committed that a load has not published yet (with their changes),
  // which every load takes in place of the zone's file; the audit log (control.state_dir set),
  // opened on its first entry.
  std::map<std::string, LoadedZone> pending_zones_;
  std::vector<ZoneChange> pending_changes_;
  // Zones created through the service (ControlService::createZone): files in STATE/zones/, found
  // there at start, served beside the configuration's zones; and the ones deleted since the last
  // load.
  std::vector<ZoneConfig> api_zones_;
  std::set<std::string> removed_zones_;
  // Adds api_zones_ to `config`'s zones (those the configuration does not name itself).
  void addApiZones(Config& config) const;
  // Services created through the service (ControlService::putService), by canonical name: kept
  // in STATE/services.toml, read at every full load (start-up, reload) and compiled beside the
  // configuration's, which win on a name both define. services_store_error_: the store did not
  // load (its services stay as they were; the API's service writes are refused until it loads);
  // services_changed_: the next load compiles the steering even when it re-reads nothing.
  std::map<std::string, StoredService> api_services_;
  std::string services_store_error_;
  bool services_changed_ = false;
  [[nodiscard]] std::string servicesStorePath() const {
    return config_.state_dir + "/services.toml";
  }
  // `base` (a configuration's steering) with the services of `api` it does not define itself.
  [[nodiscard]] static georoute::SteeringConfig withApiServices(
      const georoute::SteeringConfig& base, const std::map<std::string, StoredService>& api);
  std::optional<control::AuditLog> audit_;
  std::string audit_error_;

  // Loads: one at a time (ReloadQueue), the heavy parts on pool_. run_ is the running one.
  std::unique_ptr<LoadRun> run_;
  bool next_full_ = false;  // the queued load re-reads configuration and zones (not GeoIP alone)
  bool startup_failed_ = false;
  std::function<void(const std::string&)> parse_hook_;
  // Set on stop (SIGTERM/SIGINT, requestStop): the pool's zone loads watch it (LoadStopScope).
  std::atomic<bool> load_stop_{false};
  core::ReloadQueue<LoadReport> loads_{[this](uint64_t ticket) { beginLoad(ticket); }};
  // Last: destroyed (stopped and joined) first, before anything its jobs' completions touch.
  std::unique_ptr<core::WorkPool> pool_;
};

}  // namespace meridian::app
