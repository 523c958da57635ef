// Meridian's own API resources (api_meridian.h). Control loop only.
#include "app/api_meridian.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

#include "app/api_service.h"
#include "app/service_store.h"
#include "core/metrics.h"
#include "georoute/policy.h"
#include "healthcheck/state.h"

namespace meridian::app {

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using api::Access;
using api::Request;
using api::Response;
using Kind = ServiceError::Kind;

Response serviceError(const ServiceError& e, unsigned not_found = 404) {
  return Response::error(e.kind == Kind::kNotFound ? not_found : httpStatus(e.kind), e.message);
}

json::value orNull(const std::string& s) {
  return s.empty() ? json::value(nullptr) : json::value(s);
}

// Where the slot `id` is used: every (service, region) pool listing an endpoint on it.
json::array whereUsed(const georoute::ServiceSet* services, uint32_t id) {
  json::array out;
  if (services == nullptr) return out;
  for (const auto& svc : services->services) {
    for (const auto& pool : svc.pools) {
      for (const auto& ep : pool.endpoints) {
        if (ep.health_id != id) continue;
        out.push_back(
            json::object{{"service", svc.name}, {"region", services->regions[pool.region].name}});
        break;
      }
    }
  }
  return out;
}

// The body of a PUT as a JSON object, or the 400 answer.
bool bodyObject(const Request& req, json::object& out, Response& error) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec || !v.is_object()) {
    error = Response::error(400, "the body must be a JSON object");
    return false;
  }
  out = std::move(v.as_object());
  return true;
}

// A string member of `body`; false (and the 422 naming it) when missing or not a string.
bool stringField(const json::object& body, const char* name, std::string& out, Response& error) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || !v->is_string()) {
    error = Response::error(422, std::string(name) + ": a string is required");
    return false;
  }
  out = std::string(v->as_string());
  return true;
}

// The override is audited under the request's key name and client address.
Response overrideAnswer(ControlService& control, const Request& req, const std::string& what,
                        const std::string& mode, unsigned not_found) {
  auto r = control.setOverride(what, mode, Actor{req.key ? req.key->name() : "", req.remote});
  if (!r) return serviceError(r.error(), not_found);
  json::array changes;
  for (const auto& c : r->changes) {
    changes.push_back(json::object{{"label", c.label}, {"ok", c.ok}, {"error", orNull(c.error)}});
  }
  return Response::json(200, json::object{{"what", what},
                                          {"mode", healthcheck::overrideName(r->mode)},
                                          {"changes", std::move(changes)}});
}

json::array strings(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.push_back(json::value(s));
  return out;
}

json::object explanationJson(const Explanation& e) {
  json::array cnames;
  for (const auto& h : e.cnames) {
    cnames.push_back(
        json::object{{"from", h.from}, {"to", h.to}, {"zone", h.zone}, {"ttl", h.ttl}});
  }
  json::object out{{"name", e.name}, {"steered", e.steered}, {"cnames", std::move(cnames)}};
  if (!e.steered) return out;
  out["service"] = e.service;
  out["type"] = e.type;
  out["client"] = e.client;
  out["from_ecs"] = e.from_ecs;
  out["policy"] = strings(e.policy);
  out["steps"] = strings(e.steps);
  out["decision"] = georoute::decisionName(e.decision);
  out["answer"] = strings(e.answer);
  out["scope"] = e.scope;
  return out;
}

json::object reloadJson(const ReloadResult& r) {
  json::object errors;
  for (const auto& [name, err] : r.errors) errors[name] = err;
  return {{"loaded", r.report.loaded},
          {"unchanged", r.report.unchanged},
          {"failed", r.report.failed},
          {"warnings", strings(r.report.warnings)},
          {"errors", std::move(errors)}};
}

json::object serviceJson(const georoute::ServiceSet& set, const georoute::Service& svc,
                         const std::vector<EndpointHealth>& health) {
  json::array policy;
  for (const auto f : svc.policy) policy.push_back(json::value(georoute::filterName(f)));
  json::array pools;
  for (const auto& pool : svc.pools) {
    json::array endpoints;
    for (const auto& ep : pool.endpoints) {
      json::object o{{"label", ep.label}, {"weight", ep.weight}};
      if (!ep.target.empty()) o["target"] = ep.target;
      if (ep.health_id < health.size()) {
        const EndpointHealth& h = health[ep.health_id];
        o["address"] = orNull(h.address);
        o["health"] = json::object{{"id", h.id},
                                   {"verdict", h.up ? "up" : "down"},
                                   {"override", healthcheck::overrideName(h.override)},
                                   {"usable", h.usable}};
      } else {
        o["health"] = nullptr;
      }
      endpoints.push_back(std::move(o));
    }
    pools.push_back(json::object{{"region", set.regions[pool.region].name},
                                 {"endpoints", std::move(endpoints)}});
  }
  return json::object{{"name", svc.name},
                      {"zone", svc.zone},
                      {"ttl", svc.ttl},
                      {"policy", std::move(policy)},
                      {"pools", std::move(pools)}};
}

// Where the service is defined: "source" config or api, the file; an API service's definition.
void addSource(json::object& o, const ControlService& c, const std::string& name) {
  auto def = c.serviceDefinition(name);
  if (!def) return;
  o["source"] = def->stored ? "api" : "config";
  o["file"] = def->file;
  if (def->stored) o["definition"] = definitionJson(*def->stored);
}

// A key limited to zones reaches the services whose names lie in one of them.
bool serviceInScope(const ControlService& c, const Request& req, const std::string& name) {
  if (req.key == nullptr) return true;
  const std::string zone = c.zoneOf(name);
  return req.key->allowsZone(zone.empty() ? api::canonicalZone(name) : zone);
}

Response outOfScope(const Request& req, const std::string& name) {
  return Response::error(403, "API key '" + req.key->name() + "' may not touch service " +
                                  api::canonicalZone(name) + " (outside its zones)");
}

// The answer of a service change once published: 200 with the service as GET shows it (201 when
// created).
void answerService(ControlService& c, const std::string& name, unsigned status,
                   const std::function<void(Response)>& deliver) {
  const auto services = c.services();
  const std::string want = api::canonicalZone(name);
  if (services) {
    for (const auto& svc : services->services) {
      if (svc.name != want) continue;
      json::object o = serviceJson(*services, svc, c.health());
      addSource(o, c, want);
      return deliver(Response::json(status, o));
    }
  }
  deliver(Response::error(500, "service " + want + " is not served"));
}

// PUT of a whole service or of its policy: `make` turns the body into the stored service.
Response putServiceAnswer(
    ControlService& c, Request& req, const std::string& operation,
    const std::function<Result<StoredService>(const json::object&, const std::string&)>& make) {
  const std::string name = req.params["name"];
  if (!serviceInScope(c, req, name)) return outOfScope(req, name);
  json::object body;
  Response error;
  if (!bodyObject(req, body, error)) return error;
  auto svc = make(body, name);
  if (!svc) return Response::error(422, svc.error().message);
  Actor who{req.key ? req.key->name() : "", req.remote};
  Response res;
  res.later = [&c, svc = std::move(*svc), who, operation,
               name](std::function<void(Response)> deliver) mutable {
    c.putService(std::move(svc), who, operation, [&c, name, deliver](ServiceResult<bool> result) {
      if (!result) return deliver(serviceError(result.error()));
      answerService(c, name, *result ? 201 : 200, deliver);
    });
  };
  return res;
}

// The API server's own families, appended to the control service's text.
std::string apiMetrics(const api::HttpServer* server) {
  const api::HttpCounters c = server != nullptr ? server->counters() : api::HttpCounters{};
  std::vector<core::MetricFamily> families;
  core::MetricFamily responses("meridian_api_responses_total",
                               "Management API responses by status class (an event stream "
                               "counts once, as its 200)",
                               core::MetricType::kCounter);
  for (int i = 0; i < 5; ++i) {
    responses.add({{"class", std::to_string(i + 1) + "xx"}}, c.responses[i]);
  }
  families.push_back(std::move(responses));
  const auto counter = [&](const char* name, const char* help, uint64_t value) {
    core::MetricFamily f(name, help, core::MetricType::kCounter);
    f.add({}, value);
    families.push_back(std::move(f));
  };
  counter("meridian_api_requests_total", "Management API requests read", c.requests);
  counter("meridian_api_connections_total", "Management API connections accepted", c.connections);
  counter("meridian_api_refused_total", "Management API connections refused at max_connections",
          c.refused);
  counter("meridian_api_timeouts_total", "Management API connections closed by a timeout",
          c.timeouts);
  counter("meridian_api_rejected_total",
          "Management API requests rejected as malformed or too large (400, 413, 431)", c.rejected);
  counter("meridian_api_dropped_streams_total", "Event streams dropped for not reading",
          c.dropped_streams);
  return core::renderPrometheus(families);
}

}  // namespace

json::object endpointJson(const EndpointHealth& e, const georoute::ServiceSet* services) {
  json::object o{{"id", e.id},
                 {"label", e.label},
                 {"address", orNull(e.address)},
                 {"checked", e.checked},
                 {"verdict", e.up ? "up" : "down"},
                 {"override", healthcheck::overrideName(e.override)},
                 {"usable", e.usable},
                 {"where", whereUsed(services, e.id)}};
  if (e.checked) {
    o["port"] = e.port;
    o["check"] = e.check;
    o["rtt_ms"] = e.rtt_us == 0 ? json::value(nullptr) : json::value(e.rtt_us / 1000.0);
    o["streak"] = json::object{{"consecutive", e.consecutive},
                               {"opposing", e.opposing},
                               {"rise", e.rise},
                               {"fall", e.fall}};
    o["probes"] = e.probes;
    o["failures"] = e.failures;
    o["changed_at_ms"] = e.changed_at_ms;
    o["last_error"] = orNull(e.last_error);
  }
  return o;
}

std::function<void()> addMeridianRoutes(ApiService& api, ControlService& control,
                                        bool metrics_without_key) {
  api::Router& r = api.routes();
  ControlService* c = &control;

  r.add(http::verb::get, "/api/v1/health", Access::kRead, [c](Request&) {
    const auto services = c->services();
    json::array out;
    for (const auto& e : c->health()) out.push_back(endpointJson(e, services.get()));
    return Response::json(200, json::object{{"endpoints", std::move(out)}});
  });
  // {target}: an id, a label (its '/' sent as %2F) or an address (the first slot with it).
  r.add(http::verb::get, "/api/v1/health/{target}", Access::kRead, [c](Request& req) {
    const std::string& want = req.params["target"];
    const auto health = c->health();
    const EndpointHealth* found = nullptr;
    for (const auto& e : health) {
      if (std::to_string(e.id) == want || e.label == want) {
        found = &e;
        break;
      }
    }
    for (const auto& e : health) {
      if (found == nullptr && !e.address.empty() && e.address == want) found = &e;
    }
    if (found == nullptr) return Response::error(404, "no health slot '" + want + "'");
    return Response::json(200, endpointJson(*found, c->services().get()));
  });

  r.add(http::verb::get, "/api/v1/overrides", Access::kRead, [c](Request&) {
    json::array out;
    for (const auto& e : c->health()) {
      if (e.override == healthcheck::Override::kNone) continue;
      out.push_back(json::object{{"id", e.id},
                                 {"label", e.label},
                                 {"address", orNull(e.address)},
                                 {"override", healthcheck::overrideName(e.override)},
                                 {"usable", e.usable}});
    }
    return Response::json(200, json::object{{"overrides", std::move(out)}});
  });
  // {"what": ..., "mode": ...}: a target that matches nothing is a bad field (422).
  r.add(http::verb::put, "/api/v1/overrides", Access::kWrite, [c](Request& req) {
    json::object body;
    std::string what, mode;
    Response error;
    if (!bodyObject(req, body, error) || !stringField(body, "what", what, error) ||
        !stringField(body, "mode", mode, error))
      return error;
    return overrideAnswer(*c, req, what, mode, 422);
  });
  // The target in the path ({"mode": ...} in the body): one that matches nothing is 404.
  r.add(http::verb::put, "/api/v1/overrides/{what}", Access::kWrite, [c](Request& req) {
    json::object body;
    std::string mode;
    Response error;
    if (!bodyObject(req, body, error) || !stringField(body, "mode", mode, error)) return error;
    return overrideAnswer(*c, req, req.params["what"], mode, 404);
  });
  r.add(http::verb::delete_, "/api/v1/overrides/{what}", Access::kWrite,
        [c](Request& req) { return overrideAnswer(*c, req, req.params["what"], "none", 404); });

  r.add(http::verb::get, "/api/v1/explain", Access::kRead, [c](Request& req) {
    ExplainRequest q;
    q.name = req.queryParam("name");
    q.client = req.queryParam("client");
    if (const std::string type = req.queryParam("type"); !type.empty()) q.type = type;
    if (q.name.empty()) return Response::error(400, "name: the query parameter is required");
    if (q.client.empty()) return Response::error(400, "client: the query parameter is required");
    auto e = c->explain(q);
    if (!e) return serviceError(e.error());
    return Response::json(200, explanationJson(*e));
  });

  // Answered once the reload is published (a request during a reload shares the one queued).
  r.add(http::verb::post, "/api/v1/reload", Access::kWrite, [c](Request&) {
    Response res;
    res.later = [c](std::function<void(Response)> answer) {
      c->reload([answer = std::move(answer)](const ReloadResult& result) {
        answer(Response::json(200, reloadJson(result)));
      });
    };
    return res;
  });

  r.add(http::verb::get, "/api/v1/services", Access::kRead, [c](Request& req) {
    const auto services = c->services();
    json::array out;
    if (!services) return Response::json(200, out);
    const auto health = c->health();
    for (const auto& svc : services->services) {
      if (!serviceInScope(*c, req, svc.name)) continue;
      json::object o = serviceJson(*services, svc, health);
      addSource(o, *c, svc.name);
      out.push_back(std::move(o));
    }
    return Response::json(200, out);
  });
  r.add(http::verb::get, "/api/v1/services/{name}", Access::kRead, [c](Request& req) {
    const std::string& name = req.params["name"];
    if (!serviceInScope(*c, req, name)) return outOfScope(req, name);
    Response res;
    answerService(*c, name, 200, [&res](Response r) { res = std::move(r); });
    if (res.status == 500) return Response::error(404, "no service " + api::canonicalZone(name));
    return res;
  });
  // The body is one [[service]] table as JSON (docs/api.md "Services").
  r.add(http::verb::put, "/api/v1/services/{name}", Access::kWrite,
        [c](Request& req) { return putServiceAnswer(*c, req, "put", serviceFromJson); });
  r.add(http::verb::put, "/api/v1/services/{name}/policy", Access::kWrite, [c](Request& req) {
    const std::string& name = req.params["name"];
    auto def = c->serviceDefinition(name);
    if (!def) return serviceError(def.error());
    if (!def->stored) {
      return Response::error(409, "service " + def->name + " is defined in " + def->file +
                                      "; the API changes only the services it made (edit the "
                                      "file and reload)");
    }
    const StoredService stored = *def->stored;
    return putServiceAnswer(*c, req, "policy",
                            [stored](const json::object& body, const std::string&) {
                              return withPolicy(stored, body);
                            });
  });
  r.add(http::verb::delete_, "/api/v1/services/{name}", Access::kWrite, [c](Request& req) {
    const std::string name = req.params["name"];
    if (!serviceInScope(*c, req, name)) return outOfScope(req, name);
    Actor who{req.key ? req.key->name() : "", req.remote};
    Response res;
    res.later = [c, name, who](std::function<void(Response)> deliver) {
      c->deleteService(name, who, [deliver](ServiceResult<void> result) {
        if (!result) return deliver(serviceError(result.error()));
        Response ok;
        ok.status = 204;
        deliver(std::move(ok));
      });
    };
    return res;
  });
  r.add(http::verb::get, "/api/v1/regions", Access::kRead, [c](Request&) {
    json::array out;
    if (const auto services = c->services()) {
      for (const auto& region : services->regions) {
        json::object o{{"name", region.name}};
        if (region.has_coordinates) {
          o["latitude"] = region.latitude;
          o["longitude"] = region.longitude;
          o["bias_km"] = region.bias_km;
        }
        out.push_back(std::move(o));
      }
    }
    return Response::json(200, out);
  });

  ApiService* a = &api;
  r.add(http::verb::get, "/metrics", metrics_without_key ? Access::kOpen : Access::kRead,
        [c, a](Request&) {
          Response res;
          res.content_type = core::kPrometheusContentType;
          res.body = c->metrics() + apiMetrics(a->server());
          return res;
        });

  // Events: a verdict a probe flipped is `health`, an override set (socket or API) `override`.
  const size_t id = control.onHealthChange([c, a](const HealthChange& change) {
    const auto services = c->services();
    a->events().publish(change.from_override ? "override" : "health",
                        endpointJson(change.endpoint, services.get()));
  });
  return [c, id] { c->removeHealthListener(id); };
}

}  // namespace meridian::app
