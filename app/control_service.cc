#include "app/control_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "api/pdns_json.h"
#include "app/api_service.h"
#include "app/runtime.h"
#include "core/log.h"
#include "dns/name.h"
#include "georoute/compile.h"
#include "georoute/geoip.h"
#include "healthcheck/monitor.h"
#include "healthcheck/prober.h"
#include "server/steering_zones.h"
#include "zones/writer.h"

namespace meridian::app {

using Kind = ServiceError::Kind;

std::string LoadReport::text() const {
  return std::to_string(loaded) + " zone(s) loaded, " + std::to_string(unchanged) + " unchanged, " +
         std::to_string(failed) + " failed";
}

namespace {

// A name as operators type it: any case, trailing dot optional.
std::string canonicalName(std::string n) {
  if (n.empty() || n.back() != '.') n += '.';
  for (char& c : n) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  return n;
}

std::optional<healthcheck::Override> parseOverride(const std::string& mode) {
  for (const auto o : {healthcheck::Override::kForceUp, healthcheck::Override::kForceDown,
                       healthcheck::Override::kDrain, healthcheck::Override::kNone}) {
    if (mode == healthcheck::overrideName(o)) return o;
  }
  return std::nullopt;
}

}  // namespace

std::vector<ZoneInfo> ControlService::listZones() const {
  const Runtime& rt = runtime_;
  std::vector<ZoneInfo> out;
  auto info = [&](const std::string& origin, const std::string& file, zones::SerialPolicy policy) {
    ZoneInfo z;
    z.origin = origin;
    z.file = file;
    z.serial_policy = policy;
    if (auto p = serial_policies_.find(origin); p != serial_policies_.end()) {
      z.serial_policy = p->second;
      z.serial_policy_set = true;
    }
    if (auto it = rt.zones_.find(origin); it != rt.zones_.end()) {
      const auto& lz = it->second;
      z.served = true;
      z.file = lz.file;
      z.serial = lz.zone->serial();
      z.records = lz.zone->recordCount();
      z.loaded_at = lz.loaded_at;
    }
    if (auto e = rt.zone_errors_.find(origin); e != rt.zone_errors_.end()) z.error = e->second;
    return z;
  };
  for (const auto& zc : rt.config_.zones) out.push_back(info(zc.name, zc.file, zc.serial_policy));
  // A zone still served that the configuration no longer names cannot be: a reload drops it. But
  // a failed configuration reload keeps the old zone list: list what is served, whatever.
  for (const auto& [origin, lz] : rt.zones_) {
    if (std::none_of(out.begin(), out.end(), [&](const ZoneInfo& z) { return z.origin == origin; }))
      out.push_back(info(origin, lz.file, zones::SerialPolicy::kIncrement));
  }
  std::sort(out.begin(), out.end(),
            [](const ZoneInfo& a, const ZoneInfo& b) { return a.origin < b.origin; });
  return out;
}

ServiceResult<ZoneDetail> ControlService::getZone(const std::string& origin) const {
  const std::string name = canonicalName(origin);
  for (const auto& z : listZones()) {
    if (canonicalName(z.origin) != name || !z.served) continue;
    const auto& lz = runtime_.zones_.at(z.origin);
    return ZoneDetail{z, lz.content};
  }
  return ServiceError{Kind::kNotFound, "zone " + name + " is not served"};
}

void ControlService::reload(std::function<void(const ReloadResult&)> done) {
  runtime_.requestReload([this, done = std::move(done)](const LoadReport& report) {
    if (done) done(ReloadResult{report, runtime_.zone_errors_});
  });
}

std::vector<EndpointHealth> ControlService::health() const {
  return runtime_.monitor_ ? endpointHealth(*runtime_.monitor_) : std::vector<EndpointHealth>{};
}

namespace {

EndpointHealth slotHealth(const healthcheck::Target& t, const healthcheck::TargetState& s) {
  EndpointHealth e;
  e.id = t.id;
  e.label = t.label;
  if (!t.address.is_unspecified()) e.address = t.address.to_string();
  e.checked = t.checked;
  if (t.checked) {
    e.port = t.spec.port;
    e.check = healthcheck::describeCheck(t.spec);
    e.rise = t.spec.rise;
    e.fall = t.spec.fall;
  }
  e.up = s.up;
  e.override = s.override;
  e.usable = s.usable();
  e.rtt_us = s.rtt_us;
  e.consecutive = s.consecutive;
  e.opposing = s.opposing;
  e.probes = s.probes;
  e.failures = s.failures;
  e.changed_at_ms = s.changed_at_ms;
  e.last_error = s.last_error;
  return e;
}

}  // namespace

std::vector<EndpointHealth> endpointHealth(const healthcheck::Monitor& monitor) {
  std::vector<EndpointHealth> out;
  const auto& states = monitor.states();
  for (const auto& t : monitor.targets()) {
    if (t.id < states.size()) out.push_back(slotHealth(t, states[t.id]));
  }
  return out;
}

ServiceResult<OverrideResult> ControlService::setOverride(const std::string& what,
                                                          const std::string& mode,
                                                          const Actor& who) {
  const auto o = parseOverride(mode);
  if (!o)
    return ServiceError{Kind::kInvalid,
                        "override mode must be force-up, force-down, drain or none"};
  if (what.empty())
    return ServiceError{Kind::kInvalid, "override: name an endpoint, region, pool or service"};
  const Runtime& rt = runtime_;
  if (!rt.monitor_) return ServiceError{Kind::kUnavailable, "no steered endpoints are configured"};
  std::string service, region;
  bool by_endpoints = true;
  if (what.rfind("region:", 0) == 0) {
    region = what.substr(7);
  } else if (what.rfind("pool:", 0) == 0) {
    const size_t slash = what.rfind('/');
    if (slash == std::string::npos || slash < 6 || slash + 1 == what.size())
      return ServiceError{Kind::kInvalid,
                          "a pool is named pool:SERVICE/REGION, e.g. pool:www.example.com/eu"};
    service = canonicalName(what.substr(5, slash - 5));
    region = what.substr(slash + 1);
  } else if (what.rfind("service:", 0) == 0) {
    service = canonicalName(what.substr(8));
  } else {
    by_endpoints = false;
  }
  if (by_endpoints && (what == "region:" || what == "service:"))
    return ServiceError{Kind::kInvalid,
                        "'" + what + "' names nothing; give a region or service name"};
  const auto& targets = rt.targets_;
  std::vector<uint32_t> ids;
  auto add = [&](uint32_t id) {
    if (id < targets.size() && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  };
  if (by_endpoints && rt.services_) {
    const auto& set = *rt.services_;
    for (const auto& svc : set.services) {
      if (!service.empty() && svc.name != service) continue;
      for (const auto& pool : svc.pools) {
        if (!region.empty() && set.regions[pool.region].name != region) continue;
        for (const auto& ep : pool.endpoints) add(ep.health_id);
      }
    }
  } else if (!by_endpoints) {
    const std::string address = georoute::canonicalAddress(what);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (targets[i].label == what || targets[i].address == address) add(static_cast<uint32_t>(i));
    }
  }
  if (ids.empty())
    return ServiceError{Kind::kNotFound, "nothing matches '" + what + "' (see meridianctl health)"};
  OverrideResult result;
  result.mode = *o;
  for (uint32_t id : ids) {
    auto r = rt.monitor_->setOverride(id, *o);
    result.changes.push_back({targets[id].label, r.has_value(), r ? "" : r.error().message});
  }
  control::AuditEntry entry;
  entry.key = who.key;
  entry.source = who.source;
  entry.operation = "override";
  entry.detail = what + " " + mode;
  audit(std::move(entry));
  return result;
}

ServiceResult<Explanation> explainQuery(const zones::ZoneSet& zones,
                                        const georoute::ServiceSet* services,
                                        const healthcheck::Verdicts& health,
                                        const ExplainRequest& request) {
  Explanation out;
  out.type = request.type;
  out.client = request.client;
  uint16_t qtype = 0;
  if (request.type == "A") qtype = 1;
  if (request.type == "AAAA") qtype = 28;
  if (request.type == "CNAME") qtype = 5;
  if (qtype == 0) return ServiceError{Kind::kInvalid, "type must be A, AAAA or CNAME"};
  auto cidr = georoute::parseCidr(request.client);
  if (!cidr) return ServiceError{Kind::kInvalid, "client: " + cidr.error().message};
  georoute::Client client;
  client.ipv6 = cidr->ipv6;
  std::memcpy(client.address, cidr->address, 16);
  client.source_prefix = cidr->prefix;
  client.from_ecs = request.client.find('/') != std::string::npos;
  out.from_ecs = client.from_ecs;
  dns::NameBuf name;
  const std::string& q = request.name;
  if (q.empty() || !dns::fromText(q.back() == '.' ? q : q + ".", name))
    return ServiceError{Kind::kInvalid, "bad name '" + q + "'"};
  dns::lowercase(name);
  const georoute::Service* svc = services ? services->find(name) : nullptr;
  // A CNAME chain in the served zones that reaches a service ends in the steered answer, as the
  // server answers it: follow the zones' CNAMEs (at most 8: a longer trace is unreadable).
  for (int hop = 0; services && svc == nullptr && hop < 8; ++hop) {
    const zones::Zone* zone = zones.findZone(name);
    if (zone == nullptr) break;
    const uint32_t n = zone->find(name.data, name.length);
    if (n == zones::kNone) break;
    const zones::RRset* cname = zone->rrset(zone->node(n), 5);
    if (cname == nullptr || cname->target_offset == zones::kNone) break;
    const std::string target = dns::toText(zone->pooledName(cname->target_offset));
    out.cnames.push_back({dns::toText(name.data), target, zone->origin(), zone->ttl(*cname)});
    if (!dns::fromText(target, name)) break;
    svc = services->find(name);
  }
  out.name = dns::toText(name.data);
  if (svc == nullptr) return out;
  out.steered = true;
  out.service = svc->name;
  for (auto f : svc->policy) out.policy.emplace_back(georoute::filterName(f));
  georoute::Trace trace;
  const auto d = georoute::decide(*services, *svc, qtype, client, health, &trace);
  out.steps = std::move(trace.lines);
  out.decision = d.kind;
  for (size_t i = 0; i < d.count; ++i) out.answer.push_back(d.chosen[i]->label);
  out.scope = d.scope;
  return out;
}

ServiceResult<Explanation> ControlService::explain(const ExplainRequest& request) const {
  const auto state = runtime_.state_.load();
  static const healthcheck::Verdicts kAllUp;
  return explainQuery(state->zones, state->services.get(), state->health ? *state->health : kAllUp,
                      request);
}

std::string ControlService::metrics() const {
  return runtime_.metrics();
}

Stats ControlService::stats() const {
  const Runtime& rt = runtime_;
  Stats s;
  s.uptime_s = std::time(nullptr) - rt.started_;
  s.workers = rt.config_.server.threads;
  s.reloads = rt.reloads_;
  s.loads_run = rt.loads_.finished();
  if (rt.server_) {
    s.serving = true;
    for (const auto& l : rt.server_->listening()) s.listening.push_back(l.text());
    s.totals = rt.server_->totals();
  }
  s.rrl_enabled = rt.config_.protocol.rrl.enabled;
  for (const auto& z : listZones()) {
    if (z.served) s.zones.push_back(z);
  }
  s.errors = rt.zone_errors_;
  for (const Runtime::GeoSlot* slot : {&rt.geo_, &rt.asn_}) {
    if (!slot->db && slot->error.empty()) continue;
    Stats::Geo g;
    if (slot->db) {
      g.path = slot->db->path();
      g.type = slot->db->type();
    }
    g.error = slot->error;
    s.geoip.push_back(std::move(g));
  }
  if (rt.services_) {
    s.steering = true;
    s.services = rt.services_->services.size();
    s.health_targets = static_cast<size_t>(
        std::count_if(rt.targets_.begin(), rt.targets_.end(),
                      [](const georoute::HealthTarget& t) { return t.checked; }));
    s.unchecked_endpoints = rt.targets_.size() - s.health_targets;
  }
  s.steering_error = rt.steering_error_;
  s.snapshots_retired = rt.state_.domain().freed();
  s.snapshots_waiting = rt.state_.domain().pending();
  s.reload_running = rt.loads_.running();
  s.reload_queued = rt.loads_.queued();
  return s;
}

size_t ControlService::onZoneChange(ZoneChangeListener listener) {
  const size_t id = next_listener_++;
  listeners_.emplace_back(id, std::move(listener));
  return id;
}

void ControlService::removeZoneListener(size_t id) {
  std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

namespace {

// A diff's side as the audit log keeps it: the zone-file lines of its records ($ORIGIN left out).
std::vector<std::string> presentationLines(const zones::ZoneContent& content) {
  std::vector<std::string> out;
  if (content.empty()) return out;
  const std::string text = zones::zoneText(content);
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos && text.compare(pos, 7, "$ORIGIN") != 0)
      out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

ServiceError editError(const zones::EditError& e) {
  using K = zones::EditErrorKind;
  const Kind kind = e.kind == K::kConflict  ? Kind::kConflict
                    : e.kind == K::kStorage ? Kind::kStorage
                                            : Kind::kInvalid;
  return ServiceError{kind, e.field.empty() ? e.message : e.field + ": " + e.message, e.field};
}

}  // namespace

zones::EditableZoneConfig editableZoneConfig(const ZoneConfig& zone, const std::string& state_dir) {
  zones::EditableZoneConfig config;
  config.origin = zone.name;
  config.file = zone.file;
  config.policy = zone.serial_policy;
  // The API's zone id ("0=2F26.2.0.192.in-addr.arpa." for a classless reverse zone): no '/'.
  // Without a state directory: empty, the EditableZoneConfig default beside the zone file.
  if (!state_dir.empty())
    config.journal = state_dir + "/journal/" + api::pdns::zoneId(zone.name) + "journal";
  return config;
}

void ControlService::setSerialPolicy(const std::string& origin,
                                     std::optional<zones::SerialPolicy> policy) {
  if (policy) {
    serial_policies_[origin] = *policy;
  } else {
    serial_policies_.erase(origin);
  }
}

void ControlService::audit(control::AuditEntry entry) {
  Runtime& rt = runtime_;
  if (rt.config_.state_dir.empty()) return;
  if (!rt.audit_) {
    std::error_code ec;
    std::filesystem::create_directories(rt.config_.state_dir, ec);
    auto opened = control::AuditLog::open(rt.config_.state_dir + "/audit.log");
    if (!opened) {
      if (rt.audit_error_ != opened.error().message)
        log::error("audit: " + opened.error().message + "; the change is not audited");
      rt.audit_error_ = opened.error().message;
      return;
    }
    rt.audit_.emplace(std::move(*opened));
    rt.audit_error_.clear();
  }
  if (auto r = rt.audit_->append(std::move(entry)); !r)
    log::error("audit: " + r.error().message + "; the change is not audited");
}

ServiceResult<std::vector<control::AuditEntry>> ControlService::auditEntries(
    const control::AuditFilter& filter) const {
  const std::string& dir = runtime_.config_.state_dir;
  if (dir.empty())
    return ServiceError{Kind::kUnavailable, "no audit log: control.state_dir is not set"};
  const std::string path = dir + "/audit.log";
  if (::access(path.c_str(), F_OK) != 0) return std::vector<control::AuditEntry>{};
  auto entries = control::readEntries(path, filter);
  if (!entries) return ServiceError{Kind::kStorage, entries.error().message};
  return std::move(*entries);
}

namespace {

// What a change's pool job hands back to the control loop.
struct CommitJob {
  std::unique_ptr<zones::EditableZone> opened;  // the zone's EditableZone, opened by this job
  std::vector<std::string> open_warnings;
  std::optional<ServiceError> error;
  zones::EditableZone::Committed committed;
  std::shared_ptr<const zones::ZoneContent> content;  // the new content, when it changed
  uint32_t serial = 0;                                // the zone's serial after the job
  struct stat st {};
  bool have_stat = false;
};

}  // namespace

void ControlService::patchZone(const std::string& origin, const zones::ChangeRequest& request,
                               const Actor& who,
                               std::function<void(ServiceResult<PatchResult>)> done) {
  auto detail = getZone(origin);
  if (!detail) return done(detail.error());
  const std::string name = detail->info.origin;
  // In the zone's lane: after the changes (and reloads) that came before it, one at a time.
  const zones::SerialPolicy policy = detail->info.serial_policy;
  runtime_.enterLane(name, [this, name, request, who, policy, done = std::move(done)]() mutable {
    commitStep(name, request, who, policy, std::move(done));
  });
}

void ControlService::commitStep(const std::string& name, const zones::ChangeRequest& request,
                                const Actor& who, zones::SerialPolicy policy,
                                std::function<void(ServiceResult<PatchResult>)> done) {
  Runtime& rt = runtime_;
  const auto served = rt.zones_.find(name);
  if (served == rt.zones_.end() || rt.removed_zones_.count(name) > 0) {
    // Deleted (or dropped from the configuration) while the change waited for its turn.
    rt.leaveLane(name);
    return done(ServiceError{Kind::kNotFound, "zone " + name + " is not served"});
  }
  const auto pending = rt.pending_zones_.find(name);
  const Runtime::LoadedZone& current =
      pending != rt.pending_zones_.end() ? pending->second : served->second;
  zones::EditableZone* ez = rt.lanes_[name].editable.get();
  const zones::EditableZoneConfig config =
      editableZoneConfig(ZoneConfig{name, current.file, {}}, rt.config_.state_dir);
  const int64_t now = clock_();
  // On the pool: opening the zone (its first change: the file loaded and the journal started),
  // the apply and the build of the new Zone, the race check, journal fsync, write-back; the
  // control loop meanwhile serves health probes and API requests. The lane is held, so this job
  // is the only user of the zone's EditableZone until its completion.
  auto job = [name, ez, config, content = current.content, request, now, policy,
              hook = rt.commit_hook_]() mutable -> CommitJob {
    CommitJob out;
    try {
      if (hook) hook(name);
      if (!ez) {
        auto opened = zones::EditableZone::open(config, now, out.open_warnings);
        if (!opened) {
          out.error = editError(opened.error());
          return out;
        }
        // The file must still hold what is served: an edit since the load would otherwise be
        // taken over silently (and the served version lost) by the first change.
        if (!opened->fileProblem().empty() || !zones::diff(*content, opened->content()).empty()) {
          out.error =
              ServiceError{Kind::kConflict, "the zone file " + config.file +
                                                " was changed since it was loaded; reload it first "
                                                "(meridianctl reload) and send the change again"};
          return out;
        }
        out.opened = std::make_unique<zones::EditableZone>(std::move(*opened));
        ez = out.opened.get();
      }
      ez->setPolicy(policy);
      auto committed = ez->commit(request, now);
      if (!committed) {
        out.error = editError(committed.error());
        return out;
      }
      out.committed = std::move(*committed);
      const auto serial = ez->content().serial();
      out.serial = serial ? *serial : 0;
      if (!out.committed.diff.empty()) {
        out.content = std::make_shared<const zones::ZoneContent>(ez->content());
        // The file as written back, so the next reload finds it unchanged.
        out.have_stat = ::stat(ez->config().file.c_str(), &out.st) == 0;
      }
    } catch (const std::exception& e) {
      out.error = ServiceError{Kind::kStorage, "zone " + name + ": " + e.what()};
    }
    return out;
  };
  auto finish = [this, name, who, now, done](CommitJob job) {
    Runtime& rt = runtime_;
    if (job.opened) rt.lanes_[name].editable = std::move(job.opened);
    for (const auto& w : job.open_warnings) log::warning("zone " + name + ": " + w);
    if (job.error) {
      rt.leaveLane(name);
      return done(*job.error);
    }
    PatchResult result;
    result.warnings = std::move(job.committed.warnings);
    for (const auto& w : result.warnings) log::warning("zone " + name + ": " + w);
    if (job.committed.diff.empty()) {
      result.old_serial = result.new_serial = job.serial;
      rt.leaveLane(name);
      return done(result);
    }
    result.changed = true;
    result.old_serial = job.committed.diff.old_serial;
    result.new_serial = job.committed.diff.new_serial;
    Runtime::LoadedZone lz;
    if (auto p = rt.pending_zones_.find(name); p != rt.pending_zones_.end()) {
      lz = p->second;
    } else if (auto z = rt.zones_.find(name); z != rt.zones_.end()) {
      lz = z->second;
    }
    lz.zone = job.committed.zone;
    lz.content = std::move(job.content);
    lz.loaded_at = now;
    lz.file = rt.lanes_[name].editable->config().file;
    if (job.have_stat) {
      lz.mtime = job.st.st_mtime;
      lz.mtime_nsec = job.st.st_mtim.tv_nsec;
      lz.size = job.st.st_size;
      lz.inode = job.st.st_ino;
    }
    lz.includes.clear();  // the write-back inlined them
    lz.version = ++rt.edit_versions_;
    const uint64_t version = lz.version;
    rt.pending_zones_[name] = lz;
    rt.pending_changes_.push_back(
        {name, lz.file, std::make_shared<const zones::ZoneDiff>(std::move(job.committed.diff)),
         "patch", who});
    log::info("zone " + name + ": changed by " + who.key + " (" + who.source + "): serial " +
              std::to_string(result.old_serial) + " \u2192 " + std::to_string(result.new_serial));
    // The next change to the zone may start on the pool while this one is published.
    rt.leaveLane(name);
    rt.publishEdits([this, name, version, result, done](const LoadReport&) {
      auto it = runtime_.zones_.find(name);
      if (it == runtime_.zones_.end() || it->second.version < version) {
        // A load that failed as a whole: the change is durable and goes out with the next one.
        return done(ServiceError{Kind::kStorage,
                                 "the change is saved but not served yet: the publication "
                                 "failed (see the log); the next reload serves it"});
      }
      done(result);
    });
  };
  if (!rt.pool_->post(std::move(job), std::move(finish))) {
    rt.leaveLane(name);
    done(ServiceError{Kind::kUnavailable, "the server is stopping"});
  }
}

void ControlService::createZone(const zones::ZoneContent& content, const Actor& who,
                                std::function<void(ServiceResult<ZoneDetail>)> done) {
  Runtime& rt = runtime_;
  if (rt.config_.state_dir.empty())
    return done(ServiceError{Kind::kUnavailable,
                             "zones are created in control.state_dir, which is not set"});
  const std::string origin = canonicalName(content.origin());
  const bool known =
      rt.zones_.count(origin) > 0 ||
      std::any_of(rt.config_.zones.begin(), rt.config_.zones.end(),
                  [&](const ZoneConfig& z) { return canonicalName(z.name) == origin; });
  if (known) return done(ServiceError{Kind::kConflict, "Conflict"});
  std::vector<std::string> warnings;
  auto zone = zones::buildZone(content, warnings, origin);
  if (!zone) return done(ServiceError{Kind::kInvalid, zone.error().message});
  const std::string dir = rt.config_.state_dir + "/zones";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string file = dir + "/" + api::pdns::zoneId(origin) + "zone";
  if (auto w = zones::writeZoneFile(content, file); !w)
    return done(ServiceError{Kind::kStorage, w.error().message});
  rt.removed_zones_.erase(origin);
  rt.api_zones_.push_back({origin, file});
  rt.config_.zones.push_back({origin, file});
  Runtime::LoadedZone lz;
  lz.zone = *zone;
  lz.content = std::make_shared<const zones::ZoneContent>(content);
  lz.loaded_at = std::time(nullptr);
  lz.file = file;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    lz.mtime = st.st_mtime;
    lz.mtime_nsec = st.st_mtim.tv_nsec;
    lz.size = st.st_size;
    lz.inode = st.st_ino;
  }
  rt.pending_zones_[origin] = lz;
  auto d =
      std::make_shared<zones::ZoneDiff>(zones::diff(zones::ZoneContent(content.apex()), content));
  rt.pending_changes_.push_back({origin, file, std::move(d), "create", who});
  log::info("zone " + origin + ": created by " + who.key + " (" + who.source + ") in " + file);
  rt.publishEdits(
      [this, origin, done = std::move(done)](const LoadReport&) { done(getZone(origin)); });
}

void ControlService::deleteZone(const std::string& origin, const Actor& who,
                                std::function<void(ServiceResult<void>)> done) {
  const std::string name = canonicalName(origin);
  if (auto detail = getZone(name); !detail) return done(detail.error());
  // In the zone's lane: a change still being committed finishes first.
  runtime_.enterLane(name, [this, name, who, done = std::move(done)] {
    Runtime& rt = runtime_;
    auto detail = getZone(name);
    if (!detail || rt.removed_zones_.count(name) > 0) {
      rt.leaveLane(name);
      return done(ServiceError{Kind::kNotFound, "zone " + name + " is not served"});
    }
    auto api_zone = std::find_if(rt.api_zones_.begin(), rt.api_zones_.end(),
                                 [&](const ZoneConfig& z) { return z.name == name; });
    if (api_zone == rt.api_zones_.end()) {
      rt.leaveLane(name);
      return done(ServiceError{Kind::kInvalid, "zone " + name +
                                                   " comes from the configuration file; remove "
                                                   "it there and reload"});
    }
    const std::string file = api_zone->file;
    rt.api_zones_.erase(api_zone);
    std::erase_if(rt.config_.zones, [&](const ZoneConfig& z) { return z.name == name; });
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (auto it = rt.lanes_.find(name); it != rt.lanes_.end() && it->second.editable) {
      std::string journal = it->second.editable->config().journal;
      it->second.editable.reset();
      if (!journal.empty()) std::filesystem::remove(journal, ec);
    }
    rt.pending_zones_.erase(name);
    rt.removed_zones_.insert(name);
    serial_policies_.erase(name);
    control::AuditEntry entry;
    entry.key = who.key;
    entry.source = who.source;
    entry.operation = "delete";
    entry.zone = name;
    if (auto serial = detail->content->serial()) entry.old_serial = *serial;
    audit(std::move(entry));
    log::info("zone " + name + ": deleted by " + who.key + " (" + who.source + ")");
    rt.leaveLane(name);
    rt.publishEdits([done](const LoadReport&) { done({}); });
  });
}

void ControlService::publishZoneChange(const ZoneChange& change) {
  Runtime& rt = runtime_;
  const zones::ZoneDiff& d = *change.diff;
  // A hand edit reloaded has been journaled already, in the zone's lane (Runtime::loadZoneStep).
  control::AuditEntry entry;
  entry.key = change.who.key;
  entry.source = change.who.source;
  entry.operation = change.operation;
  entry.zone = change.origin;
  entry.old_serial = d.old_serial;
  entry.new_serial = d.new_serial;
  entry.removed = presentationLines(d.removed);
  entry.added = presentationLines(d.added);
  audit(std::move(entry));
  if (rt.api_)
    rt.api_->events().publish(
        "zone", boost::json::object{{"name", change.origin}, {"serial", d.new_serial}});
  // A listener may add or remove listeners: call a copy of the list.
  const auto listeners = listeners_;
  for (const auto& [id, listener] : listeners) {
    try {
      listener(change);
    } catch (const std::exception& e) {
      log::error("zone " + change.origin + ": change listener: " + e.what());
    }
  }
}

const std::string& ControlService::stateDir() const {
  return runtime_.config_.state_dir;
}

ServiceResult<ServiceDefinition> ControlService::serviceDefinition(const std::string& name) const {
  const Runtime& rt = runtime_;
  ServiceDefinition d;
  d.name = api::canonicalZone(name);
  for (const auto& c : rt.config_.steering.services) {
    if (api::canonicalZone(c.name) != d.name) continue;
    d.file = rt.config_.source.empty() ? "--set" : rt.config_.source;
    return d;
  }
  if (auto it = rt.api_services_.find(d.name); it != rt.api_services_.end()) {
    d.file = rt.servicesStorePath();
    d.stored = it->second;
    return d;
  }
  return ServiceError{Kind::kNotFound, "no service " + d.name};
}

std::string ControlService::zoneOf(const std::string& name) const {
  dns::NameBuf owner;
  const std::string n = api::canonicalZone(name);
  if (!dns::fromText(n, owner)) return "";
  dns::lowercase(owner);
  const auto state = runtime_.state_.load();
  const zones::Zone* zone = state->zones.findZone(owner);
  return zone != nullptr ? zone->origin() : "";
}

std::optional<ServiceError> ControlService::serviceRefusal(const std::string& name) const {
  const Runtime& rt = runtime_;
  if (rt.config_.state_dir.empty())
    return ServiceError{Kind::kUnavailable,
                        "services are kept in control.state_dir, which is not set"};
  if (!rt.services_store_error_.empty())
    return ServiceError{Kind::kUnavailable, "the service store does not load (" +
                                                rt.services_store_error_ +
                                                "); fix or remove it and reload"};
  auto def = serviceDefinition(name);
  if (def && !def->stored)
    return ServiceError{Kind::kConflict, "service " + def->name + " is defined in " + def->file +
                                             "; the API changes only the services it made (edit "
                                             "the file and reload)"};
  return std::nullopt;
}

void ControlService::queueServiceOp(std::function<void(std::function<void()>)> op) {
  service_ops_.push_back(std::move(op));
  if (!service_op_running_) nextServiceOp();
}

void ControlService::nextServiceOp() {
  if (service_ops_.empty()) {
    service_op_running_ = false;
    return;
  }
  service_op_running_ = true;
  auto op = std::move(service_ops_.front());
  service_ops_.pop_front();
  op([this] { nextServiceOp(); });
}

namespace {

// A stored entry as audit lines (the TOML, one key a line).
std::vector<std::string> tomlLines(const StoredService* svc) {
  std::vector<std::string> out;
  if (svc == nullptr) return out;
  for (size_t pos = 0; pos < svc->toml.size();) {
    size_t end = svc->toml.find('\n', pos);
    if (end == std::string::npos) end = svc->toml.size();
    if (end > pos) out.push_back(svc->toml.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

void ControlService::putService(StoredService svc, const Actor& who, const std::string& operation,
                                std::function<void(ServiceResult<bool>)> done) {
  queueServiceOp([this, svc = std::move(svc), who, operation,
                  done = std::move(done)](std::function<void()> finished) mutable {
    auto answer = [done = std::move(done), finished](ServiceResult<bool> r) {
      done(std::move(r));
      finished();
    };
    if (auto refused = serviceRefusal(svc.name)) return answer(*refused);
    Runtime& rt = runtime_;
    auto next = rt.api_services_;
    const bool created = next.count(svc.name) == 0;
    const std::string name = svc.name;
    next[name] = std::move(svc);
    // The steering with the change, compiled on the pool as a load compiles it: the one place
    // that checks names against the zones, regions and checks.
    auto steering = Runtime::withApiServices(rt.config_.steering, next);
    rt.pool_->post(
        [steering = std::move(steering), state = rt.state_.load(), geo = rt.geo_.db,
         asn = rt.asn_.db, previous = rt.targets_]() -> Result<void> {
          try {
            auto compiled = georoute::compileSteering(steering, server::zoneLocator(state->zones),
                                                      geo, asn, &previous);
            if (!compiled) return compiled.error();
            return {};
          } catch (const std::exception& e) {
            return Error{e.what()};
          }
        },
        [this, next = std::move(next), name, created, operation, who,
         answer = std::move(answer)](Result<void> checked) mutable {
          if (!checked) return answer(ServiceError{Kind::kInvalid, checked.error().message});
          const std::string zone = zoneOf(name);
          commitServices(std::move(next), name,
                         operation == "policy" ? "policy"
                         : created             ? "create"
                                               : "replace",
                         zone, who, [answer = std::move(answer), created](ServiceResult<void> r) {
                           if (!r) return answer(r.error());
                           answer(created);
                         });
        });
  });
}

void ControlService::deleteService(const std::string& name, const Actor& who,
                                   std::function<void(ServiceResult<void>)> done) {
  queueServiceOp([this, name = api::canonicalZone(name), who,
                  done = std::move(done)](std::function<void()> finished) mutable {
    auto answer = [done = std::move(done), finished](ServiceResult<void> r) {
      done(std::move(r));
      finished();
    };
    if (auto refused = serviceRefusal(name)) return answer(*refused);
    auto next = runtime_.api_services_;
    if (next.erase(name) == 0) return answer(ServiceError{Kind::kNotFound, "no service " + name});
    commitServices(std::move(next), name, "delete", zoneOf(name), who, std::move(answer));
  });
}

void ControlService::commitServices(std::map<std::string, StoredService> next,
                                    const std::string& name, const std::string& operation,
                                    const std::string& zone, const Actor& who,
                                    std::function<void(ServiceResult<void>)> done) {
  Runtime& rt = runtime_;
  std::vector<StoredService> all;
  for (const auto& [n, svc] : next) all.push_back(svc);
  if (auto w = writeServiceStore(rt.servicesStorePath(), all); !w)
    return done(ServiceError{Kind::kStorage, w.error().message});
  control::AuditEntry entry;
  entry.key = who.key;
  entry.source = who.source;
  entry.operation = "service-" + operation;
  entry.zone = zone;
  entry.detail = name;
  const auto old = rt.api_services_.find(name);
  entry.removed = tomlLines(old != rt.api_services_.end() ? &old->second : nullptr);
  const auto now = next.find(name);
  entry.added = tomlLines(now != next.end() ? &now->second : nullptr);
  audit(std::move(entry));
  rt.api_services_ = std::move(next);
  rt.services_changed_ = true;
  log::info("service " + name + ": " + operation + " by " + who.key + " (" + who.source + ")");
  rt.publishEdits([this, name, operation, done = std::move(done)](const LoadReport&) {
    Runtime& rt = runtime_;
    const bool served =
        rt.services_ && std::any_of(rt.services_->services.begin(), rt.services_->services.end(),
                                    [&](const georoute::Service& s) { return s.name == name; });
    if (served == (operation == "delete")) {
      // A load that failed (a reload's broken configuration, say): the store has the change, the
      // next load that compiles the steering serves it.
      rt.services_changed_ = true;
      return done(ServiceError{Kind::kStorage,
                               "the change is saved but not served yet: the publication failed "
                               "(see the log); the next reload serves it"});
    }
    if (rt.api_) {
      rt.api_->events().publish("service", boost::json::object{{"name", name}, {"op", operation}});
    }
    done({});
  });
}

std::shared_ptr<const georoute::ServiceSet> ControlService::services() const {
  return runtime_.services_;
}

size_t ControlService::onHealthChange(HealthListener listener) {
  const size_t id = next_listener_++;
  health_listeners_.emplace_back(id, std::move(listener));
  return id;
}

void ControlService::removeHealthListener(size_t id) {
  std::erase_if(health_listeners_, [id](const auto& l) { return l.first == id; });
}

void ControlService::publishHealthChange(uint32_t id, bool verdict_changed, bool from_override) {
  if (!verdict_changed && !from_override) return;
  const auto& monitor = runtime_.monitor_;
  if (!monitor || id >= monitor->targets().size() || id >= monitor->states().size()) return;
  const HealthChange change{slotHealth(monitor->targets()[id], monitor->states()[id]),
                            verdict_changed, from_override};
  const auto listeners = health_listeners_;
  for (const auto& [lid, listener] : listeners) {
    try {
      listener(change);
    } catch (const std::exception& e) {
      log::error("health " + change.endpoint.label + ": listener: " + e.what());
    }
  }
}

}  // namespace meridian::app
