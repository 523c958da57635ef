// The management API as the Runtime runs it: the HttpServer on the control loop's io_context, the
// EventHub of `GET /api/v1/events`, and the routes that exist so far (`GET /api/v1/servers`,
// `/api/v1/servers/localhost` in PowerDNS's shape; Meridian's own resources, api_meridian.h; the
// zone endpoints are added by the control service's wiring through routes()). With no
// [[api.key]] the API does not start (logged).
// Control loop only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "api/events.h"
#include "api/http_server.h"
#include "api/router.h"
#include "app/config.h"
#include "app/control_service.h"

namespace meridian::app {

// What `GET /api/v1/servers/localhost` answers as "version": PowerDNS clients (external-dns,
// terraform-provider-powerdns) compare it with 4.5, and a version with a suffix would be a
// pre-release to their semver checks; so it is the PowerDNS release whose API Meridian follows.
// Meridian's own version is in "meridian_version" (docs/api.md).
inline constexpr const char* kPowerDnsApiVersion = "4.7.0";

class ApiService {
 public:
  ApiService(boost::asio::io_context& io, const ApiConfig& config, ControlService& control);
  ~ApiService();

  // More routes, before start().
  api::Router& routes() { return router_; }
  // Starts listening when keys are configured. False when it cannot (an address in use, a bad
  // TLS file or key): start-up fails with the message logged. No key: logs that the API is off.
  [[nodiscard]] bool start();
  void stop();
  [[nodiscard]] bool running() const { return server_ != nullptr; }
  // A reload: the new key set applies to the next requests (the other keys wait for a restart,
  // which restartOnlyChanges reports; so does turning the API on or off).
  void reconfigure(const ApiConfig& config);
  api::EventHub& events() { return hub_; }
  [[nodiscard]] const api::HttpServer* server() const { return server_.get(); }

 private:
  boost::asio::io_context& io_;
  ApiConfig config_;
  api::EventHub hub_;
  api::Router router_;
  std::unique_ptr<api::HttpServer> server_;
  std::function<void()> detach_meridian_;  // ends the event subscription of api_meridian.h
};

}  // namespace meridian::app
