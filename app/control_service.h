// The control service: the one set of operations on a running server (zones, reload, health,
// overrides, explain, stats) behind the control socket now and the HTTP API and meridianctl next.
// Each operation returns a structured result (plain structs, no text); the callers format it (the
// control socket's text in control_socket.h, the API's JSON later). Errors carry a kind, so the
// API can map them to 404 / 422 / 503 without reading the message.
//
// The service reads and drives the Runtime (runtime.h), which holds the state. Control thread
// only: every method runs on the runtime's control loop (Runtime::post() from another thread).
//
// Zone changes: after a reload has published a zone whose content differs from the version it
// replaces, every listener added with onZoneChange() is called with the diff (zones/diff.h), in
// the order added. The journal, audit log and event stream subscribe here.
#pragma once

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/service_store.h"
#include "control/audit.h"
#include "georoute/policy.h"
#include "georoute/service.h"
#include "healthcheck/state.h"
#include "server/server.h"
#include "zones/content.h"
#include "zones/diff.h"
#include "zones/edit.h"
#include "zones/zone.h"

namespace meridian::healthcheck {
class Monitor;
}

namespace meridian::app {

class Runtime;

// A load's counts (start-up, reload, a changed GeoIP file).
struct LoadReport {
  int loaded = 0;     // zones (re)loaded from their files
  int unchanged = 0;  // files not modified since the last load
  int failed = 0;     // errors; the previous version (if any) keeps serving
  // Restart-only keys the reload found changed (restartOnlyChanges), one line each.
  std::vector<std::string> warnings;
  std::string text() const;
};

// Why an operation was refused: kNotFound (no such zone, nothing matches the name), kInvalid (the
// request is malformed: a bad mode, name or address), kUnavailable (the server has nothing of the
// kind configured, e.g. no steered endpoints).
// A zone change (patchZone) adds kConflict (the zone file was edited by hand since it was loaded:
// reload it first) and kStorage (the journal or the zone file could not be written; nothing
// changed). `field` names the part of the request to blame ("rrsets[2]"), when one is.
struct ServiceError {
  enum class Kind { kNotFound, kInvalid, kUnavailable, kConflict, kStorage } kind = Kind::kInvalid;
  std::string message;
  std::string field;
};

// The HTTP status of a refusal: 404 not found, 422 invalid, 409 conflict, 503 unavailable, 500
// storage.
[[nodiscard]] constexpr unsigned httpStatus(ServiceError::Kind kind) {
  switch (kind) {
    case ServiceError::Kind::kNotFound:
      return 404;
    case ServiceError::Kind::kInvalid:
      return 422;
    case ServiceError::Kind::kConflict:
      return 409;
    case ServiceError::Kind::kUnavailable:
      return 503;
    case ServiceError::Kind::kStorage:
      break;
  }
  return 500;
}

[[noreturn]] inline void throw_exception_from_error(const ServiceError& e,
                                                    const boost::source_location&) {
  throw std::runtime_error(e.message);
}
template <typename T>
using ServiceResult = boost::system::result<T, ServiceError>;

// One configured zone.
struct ZoneInfo {
  std::string origin;  // "example.com."
  std::string file;
  bool served = false;  // a version is loaded and served
  uint32_t serial = 0;  // of the served version
  size_t records = 0;   // of the served version
  std::string error;    // the last load's error (empty when it loaded); the served version stays
  std::time_t loaded_at = 0;  // when the served version was loaded (0: never)
  // How its API changes move the serial: ControlService::setSerialPolicy()'s, else the
  // configuration's zone.serial_policy; serial_policy_set tells which.
  zones::SerialPolicy serial_policy = zones::SerialPolicy::kIncrement;
  bool serial_policy_set = false;
};

// A served zone with its editable content (the records it serves, as written in the file).
struct ZoneDetail {
  ZoneInfo info;
  std::shared_ptr<const zones::ZoneContent> content;  // never null
};

// A reload's outcome: the report and, at the time it was published, every load error by zone
// (or "(config)", "(steering)", "(load)").
struct ReloadResult {
  LoadReport report;
  std::map<std::string, std::string> errors;
};

// One health slot: a checked (address, check) or an endpoint without a check.
struct EndpointHealth {
  uint32_t id = 0;
  std::string label;
  std::string address;  // "192.0.2.1", "2001:db8::1"; empty for a CNAME endpoint
  uint16_t port = 0;    // of the check
  bool checked = false;
  std::string check;  // the check as described by healthcheck::describeCheck ("" unchecked)
  bool up = true;     // the checks' verdict (always true unchecked)
  healthcheck::Override override = healthcheck::Override::kNone;
  bool usable = true;                      // what steering uses: override first, then the verdict
  uint32_t rtt_us = 0;                     // smoothed RTT, 0 = none measured
  uint32_t consecutive = 0, opposing = 0;  // streaks (healthcheck/state.h)
  uint32_t rise = 0, fall = 0;
  uint64_t probes = 0, failures = 0;
  uint64_t changed_at_ms = 0;  // wall clock of the last verdict change
  std::string last_error;
};

// Every slot of `monitor`, by id (what ControlService::health() returns).
[[nodiscard]] std::vector<EndpointHealth> endpointHealth(const healthcheck::Monitor& monitor);

// The result of setOverride: the mode set and, per matched slot, whether it took.
struct OverrideResult {
  healthcheck::Override mode = healthcheck::Override::kNone;
  struct Change {
    std::string label;
    bool ok = true;
    std::string error;
  };
  std::vector<Change> changes;
};

// explain(): how the running server answers NAME for one client.
struct ExplainRequest {
  std::string name;
  std::string type = "A";  // A, AAAA or CNAME
  // "IP" (the query's source address) or "IP/PREFIX" (sent as ECS).
  std::string client;
};
struct Explanation {
  struct Hop {
    std::string from, to, zone;
    uint32_t ttl = 0;
  };
  std::vector<Hop> cnames;  // zone CNAMEs followed to the service
  std::string name;         // the name answered (after the CNAMEs)
  bool steered = false;     // false: the zone data answers it, nothing below is set
  std::string service;
  std::string type;
  std::string client;
  bool from_ecs = false;
  std::vector<std::string> policy;  // filter names in order
  std::vector<std::string> steps;   // one line per step (georoute::Trace)
  georoute::Decision::Kind decision = georoute::Decision::Kind::kAnswer;
  std::vector<std::string> answer;  // chosen endpoints' labels
  uint8_t scope = 0;                // ECS scope prefix length
};

// Steering for one query with given zones, services and health, as the server decides it: the
// live server's explain() and `meridian explain` (offline, main.cc) both call this.
[[nodiscard]] ServiceResult<Explanation> explainQuery(const zones::ZoneSet& zones,
                                                      const georoute::ServiceSet* services,
                                                      const healthcheck::Verdicts& health,
                                                      const ExplainRequest& request);

// stats(): the counters and state `meridianctl status` prints.
struct Stats {
  std::time_t uptime_s = 0;
  unsigned workers = 0;
  uint64_t reloads = 0;    // reload requests (SIGHUP, control socket, API)
  uint64_t loads_run = 0;  // loads finished (start-up included; coalesced requests share one)
  std::vector<std::string> listening;  // "127.0.0.1:53", once serving
  bool serving = false;
  server::CounterTotals totals;
  bool rrl_enabled = false;
  std::vector<ZoneInfo> zones;  // served ones
  std::map<std::string, std::string> errors;
  struct Geo {
    std::string path, type, error;
  };
  std::vector<Geo> geoip;  // [geoip] database, then asn_database, when configured
  bool steering = false;   // services configured
  size_t services = 0, health_targets = 0, unchecked_endpoints = 0;
  std::string steering_error;
  uint64_t snapshots_retired = 0;
  size_t snapshots_waiting = 0;
  bool reload_running = false, reload_queued = false;
};

// Who asks for a change, for the audit log: the API key's name ("meridianctl" on the control
// socket) and the client's address ("127.0.0.1:41234", "unix").
struct Actor {
  std::string key = "meridianctl";
  std::string source = "unix";
};

// A zone whose content changed, once it is served: through a reload (a hand edit of its file,
// operation "reload") or through patchZone() (operation "patch", by `who`).
struct ZoneChange {
  std::string origin;
  std::string file;
  std::shared_ptr<const zones::ZoneDiff> diff;  // never null, never empty
  std::string operation = "reload";
  Actor who{"reload", ""};
};

// What patchZone() did.
struct PatchResult {
  bool changed = false;  // false: every RRset was already as requested (nothing written)
  uint32_t old_serial = 0, new_serial = 0;
  std::vector<std::string> warnings;
};
using ZoneChangeListener = std::function<void(const ZoneChange&)>;

// A health slot whose verdict a probe flipped, or on which an override was set (by the control
// socket or the API), as the Monitor reports it; `endpoint` is the slot's state after it.
struct HealthChange {
  EndpointHealth endpoint;
  bool verdict_changed = false;
  bool from_override = false;
};
using HealthListener = std::function<void(const HealthChange&)>;

// Where a service is defined: in the configuration file (`file`: the file, "--set" without one),
// or through the API (`stored` set; `file`: STATE/services.toml).
struct ServiceDefinition {
  std::string name;  // canonical: "www.example.com."
  std::string file;
  std::optional<StoredService> stored;
};

class ControlService {
 public:
  explicit ControlService(Runtime& runtime) : runtime_(runtime) {}
  ControlService(const ControlService&) = delete;
  ControlService& operator=(const ControlService&) = delete;

  // Every configured zone (served or not), by origin.
  [[nodiscard]] std::vector<ZoneInfo> listZones() const;
  // The served zone `origin` (any case, trailing dot optional), or kNotFound.
  [[nodiscard]] ServiceResult<ZoneDetail> getZone(const std::string& origin) const;
  // Re-reads the configuration and the zone files; `done` gets the result once published (a
  // request made during a reload shares the reload queued behind it).
  void reload(std::function<void(const ReloadResult&)> done);
  // Every health slot, by id; empty when no steered endpoint is configured.
  [[nodiscard]] std::vector<EndpointHealth> health() const;
  // Sets the override `mode` ("force-up", "force-down", "drain", "none") on what `what` names:
  // an address or a target label as health() lists it, "region:NAME", "pool:SERVICE/REGION" or
  // "service:NAME" (every endpoint of those).
  // Audited as operation "override" by `who`.
  [[nodiscard]] ServiceResult<OverrideResult> setOverride(const std::string& what,
                                                          const std::string& mode,
                                                          const Actor& who = {});
  // Changes the served zone `origin` (any case, trailing dot optional) by `request`, all or
  // nothing (zones::EditableZone::commit: applied, checked, serial bumped, the race with a hand
  // edit checked by file hash, journal fsync'ed, zone file written back), then publishes it as
  // a reload publishes zones and calls `done` once the DNS workers serve it; the change goes to
  // the audit log, the event stream ("zone" {name, serial}) and the zone-change listeners.
  // kNotFound (not served), kInvalid (422: the field is named), kConflict (409: the file was
  // edited since it was loaded; reload first), kStorage (500). The apply, the build, the race
  // check, the journal fsync and the write-back run on the runtime's work pool, so the control
  // loop keeps answering meanwhile. Changes to one zone go through its lane (runtime.h): one at
  // a time, in the order patchZone() was called, each answered after the ones before it; a
  // reload's look at the zone's file and deleteZone() take their turn in the same lane. Changes
  // to different zones may run at the same time (one per pool thread).
  void patchZone(const std::string& origin, const zones::ChangeRequest& request, const Actor& who,
                 std::function<void(ServiceResult<PatchResult>)> done);
  // Adds the zone `content` to the served set (POST zones): written to STATE/zones/ID.zone
  // (pdns::zoneId) and served from there, at every start too; `done` once served. kUnavailable
  // without control.state_dir, kConflict when the zone is configured or served already, kInvalid
  // when it is not servable (buildZone's rules), kStorage.
  void createZone(const zones::ZoneContent& content, const Actor& who,
                  std::function<void(ServiceResult<ZoneDetail>)> done);
  // Removes a zone createZone() made (its file and journal go too), in the zone's lane (after a
  // change in progress); `done` once no longer served.
  // kNotFound, kInvalid for a zone of the configuration file (remove it there).
  void deleteZone(const std::string& origin, const Actor& who,
                  std::function<void(ServiceResult<void>)> done);
  // The serial policy of the zone's next changes, instead of its zone.serial_policy (the
  // PowerDNS API's soa_edit_api); nullopt goes back to the configuration's. Kept in memory here;
  // the PowerDNS endpoints keep soa_edit_api in the zone's attributes file and set it again at
  // start.
  void setSerialPolicy(const std::string& origin, std::optional<zones::SerialPolicy> policy);
  // Tests: the clock (Unix seconds) that dates and unixtime serials of changes are taken from;
  // std::time() by default.
  void setClock(std::function<int64_t()> clock) { clock_ = std::move(clock); }
  // The audit log's entries matching `filter` (control/audit.h); kUnavailable without
  // control.state_dir.
  [[nodiscard]] ServiceResult<std::vector<control::AuditEntry>> auditEntries(
      const control::AuditFilter& filter) const;
  // How the running server answers the query, with the live health table.
  [[nodiscard]] ServiceResult<Explanation> explain(const ExplainRequest& request) const;
  [[nodiscard]] Stats stats() const;
  // The Prometheus text (core/metrics.h) of the query path, health checks and reloads: what
  // `meridianctl metrics` prints and the API serves at /metrics.
  [[nodiscard]] std::string metrics() const;

  // Adds a listener for zone changes; returns its id for removeZoneListener().
  size_t onZoneChange(ZoneChangeListener listener);
  void removeZoneListener(size_t id);
  // The runtime: a load published `change` (audited, sent as an event, then the listeners).
  void publishZoneChange(const ZoneChange& change);

  // control.state_dir ("" when not set): where the API keeps what it needs beside the zones.
  [[nodiscard]] const std::string& stateDir() const;
  // Services made through the API (docs/api.md "Services"), kept in STATE/services.toml and
  // compiled with the configuration's. One change at a time: a request made while another runs
  // waits for it.
  // The service `name` (any case, trailing dot optional) as defined; kNotFound when neither the
  // configuration nor the API defines it.
  [[nodiscard]] ServiceResult<ServiceDefinition> serviceDefinition(const std::string& name) const;
  // The origin of the served zone that holds `name` ("" when none does): an API key limited to
  // zones may change a service only inside them.
  [[nodiscard]] std::string zoneOf(const std::string& name) const;
  // Creates or replaces the API service `svc` (validated by serviceFromJson / withPolicy): the
  // steering with it is compiled on the load pool as a load compiles it (kInvalid with the
  // compile's message: outside a served zone, below a delegation, no fallback RRset, an unknown
  // region or check...), then the store is written (kStorage), the change audited, published as a
  // load publishes steering, and `done` called once the DNS workers steer by it (true: created),
  // with a `service` event {name, op}. kConflict for a service of the configuration file,
  // kUnavailable without control.state_dir or while the store does not load. `operation` is
  // "put" or "policy" (audit and event).
  void putService(StoredService svc, const Actor& who, const std::string& operation,
                  std::function<void(ServiceResult<bool>)> done);
  // Removes an API service (its name then answers the zone file's RRset); `done` once published.
  // kNotFound, kConflict (configuration file), kUnavailable as putService.
  void deleteService(const std::string& name, const Actor& who,
                     std::function<void(ServiceResult<void>)> done);

  // The compiled services (regions, pools, endpoints with their health ids); null without any.
  [[nodiscard]] std::shared_ptr<const georoute::ServiceSet> services() const;
  // Adds a listener for verdict changes and overrides (HealthChange); returns its id.
  size_t onHealthChange(HealthListener listener);
  void removeHealthListener(size_t id);
  // The runtime: the Monitor reported slot `id` (probe results that change no verdict are not
  // passed on).
  void publishHealthChange(uint32_t id, bool verdict_changed, bool from_override);

 private:
  // Appends to the audit log (opened on first use); a failure is logged, never fatal.
  void audit(control::AuditEntry entry);
  // patchZone's step in the zone's lane: the commit on the pool (the zone's EditableZone opened
  // on its first change, from its file and journal; kConflict when the file no longer holds the
  // served records), then the publication; leaves the lane once the commit is back.
  void commitStep(const std::string& name, const zones::ChangeRequest& request, const Actor& who,
                  zones::SerialPolicy policy, std::function<void(ServiceResult<PatchResult>)> done);
  // Service changes, one at a time: each op gets the function that starts the next.
  void queueServiceOp(std::function<void(std::function<void()>)> op);
  void nextServiceOp();
  // Refusals common to putService and deleteService (no state_dir, a broken store, a service of
  // the configuration file); `name` canonical.
  [[nodiscard]] std::optional<ServiceError> serviceRefusal(const std::string& name) const;
  // Writes the store with `next`, audits, publishes, then sends the event and calls `done`.
  void commitServices(std::map<std::string, StoredService> next, const std::string& name,
                      const std::string& operation, const std::string& zone, const Actor& who,
                      std::function<void(ServiceResult<void>)> done);

  Runtime& runtime_;
  std::map<std::string, zones::SerialPolicy> serial_policies_;  // setSerialPolicy(), by origin
  std::function<int64_t()> clock_ = [] { return static_cast<int64_t>(std::time(nullptr)); };
  std::vector<std::pair<size_t, ZoneChangeListener>> listeners_;
  std::vector<std::pair<size_t, HealthListener>> health_listeners_;
  size_t next_listener_ = 1;
  std::deque<std::function<void(std::function<void()>)>> service_ops_;
  bool service_op_running_ = false;
};

// Where the zone `zone` keeps its journal and how its changes move the serial: the journal in
// STATE/journal/ZONE.journal (ZONE as the API's zone id), or beside the zone file without a state
// directory. What the first change opens, and the start-up recovery of a zone with a journal.
[[nodiscard]] zones::EditableZoneConfig editableZoneConfig(const ZoneConfig& zone,
                                                           const std::string& state_dir);

}  // namespace meridian::app
