// The Runtime's API (api_service.h). Control loop only.
#include "app/api_service.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "app/api_meridian.h"
#include "core/log.h"

namespace meridian::app {

namespace {

namespace http = boost::beast::http;

#ifndef MERIDIAN_VERSION
#define MERIDIAN_VERSION "unknown"
#endif

// PowerDNS's server object (its OpenAPI "Server"), as 4.7 answers it, plus meridian_version.
boost::json::object serverObject() {
  return {{"type", "Server"},
          {"id", "localhost"},
          {"daemon_type", "authoritative"},
          {"version", kPowerDnsApiVersion},
          {"meridian_version", MERIDIAN_VERSION},
          {"url", "/api/v1/servers/localhost"},
          {"config_url", "/api/v1/servers/localhost/config{/config_setting}"},
          {"zones_url", "/api/v1/servers/localhost/zones{/zone}"},
          {"autoprimaries_url", "/api/v1/servers/localhost/autoprimaries{/autoprimary}"}};
}

}  // namespace

ApiService::ApiService(boost::asio::io_context& io, const ApiConfig& config,
                       ControlService& control)
    : io_(io), config_(config), hub_(config.events) {
  router_.add(http::verb::get, "/api/v1/servers", api::Access::kRead, [](api::Request&) {
    return api::Response::json(200, boost::json::array{serverObject()});
  });
  router_.add(http::verb::get, "/api/v1/servers/{server}", api::Access::kRead,
              [](api::Request& req) {
                // PowerDNS has one server, "localhost"; another id is 404 there too.
                if (req.params["server"] != "localhost") {
                  return api::Response::error(404, "Not Found");
                }
                return api::Response::json(200, serverObject());
              });
  router_.add(http::verb::get, "/api/v1/events", api::Access::kRead, hub_.handler());
  detach_meridian_ = addMeridianRoutes(*this, control, config.metrics_without_key);
}

ApiService::~ApiService() {
  if (detach_meridian_) detach_meridian_();
  stop();
}

bool ApiService::start() {
  if (config_.keys.empty()) {
    log::info("api: no [[api.key]] configured; the HTTP API is off");
    return true;
  }
  auto keys = api::Authenticator::make(config_.keys);
  if (!keys) {
    log::error("api: " + keys.error().message);
    return false;
  }
  server_ = std::make_unique<api::HttpServer>(io_, config_.http, router_, std::move(*keys));
  if (auto r = server_->start(); !r) {
    log::error(r.error().message);
    server_.reset();
    return false;
  }
  std::string addrs;
  for (const auto& ep : server_->endpoints()) {
    const auto a = ep.address();
    // Appended piece by piece: GCC 12 at -O3 misreports a chain of + (-Wrestrict).
    if (!addrs.empty()) addrs.append(", ");
    if (a.is_v6()) {
      addrs.append(1, '[').append(a.to_string()).append(1, ']');
    } else {
      addrs.append(a.to_string());
    }
    addrs.append(1, ':').append(std::to_string(ep.port()));
  }
  log::info("api: listening on " + addrs + (config_.http.tls_certificate.empty() ? "" : " (TLS)") +
            " with " + std::to_string(config_.keys.size()) + " key(s)");
  return true;
}

void ApiService::stop() {
  if (server_) server_->stop();
}

void ApiService::reconfigure(const ApiConfig& config) {
  if (!server_) {
    if (!config.keys.empty()) {
      log::warning(
          "api: the reload configures [[api.key]], but the API was off at start-up; it "
          "starts at the next restart");
    }
    return;
  }
  // The parser checked every key already; a failure here would be a bug, and keeps the old set.
  auto keys = api::Authenticator::make(config.keys);
  if (!keys) {
    log::error("api: " + keys.error().message + "; keeping the previous keys");
    return;
  }
  if (keys->empty()) {
    log::warning("api: the reload has no [[api.key]]; the running keys stay until a restart");
    return;
  }
  server_->setKeys(std::move(*keys));
  config_.keys = config.keys;
}

}  // namespace meridian::app
