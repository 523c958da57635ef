#include "app/control_service.h"

#include <algorithm>
#include <cstring>

#include "app/runtime.h"
#include "core/log.h"
#include "dns/name.h"
#include "georoute/compile.h"
#include "georoute/geoip.h"
#include "healthcheck/monitor.h"
#include "healthcheck/prober.h"

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
  auto info = [&](const std::string& origin, const std::string& file) {
    ZoneInfo z;
    z.origin = origin;
    z.file = file;
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
  for (const auto& zc : rt.config_.zones) out.push_back(info(zc.name, zc.file));
  // A zone still served that the configuration no longer names cannot be: a reload drops it. But
  // a failed configuration reload keeps the old zone list: list what is served, whatever.
  for (const auto& [origin, lz] : rt.zones_) {
    if (std::none_of(out.begin(), out.end(), [&](const ZoneInfo& z) { return z.origin == origin; }))
      out.push_back(info(origin, lz.file));
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
                                                          const std::string& mode) {
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

void ControlService::publishZoneChange(const ZoneChange& change) {
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
