// Meridian's own resources on the management API (docs/api.md, "Meridian resources"): health and
// overrides, explain, reload, the services and regions, `/metrics`, and the `health` and
// `override` events of `GET /api/v1/events`. The handlers call the ControlService and put its
// structured results into JSON; a ServiceError maps to 404 (kNotFound), 422 (kInvalid) or 503
// (kUnavailable) with the service's message. Control loop only.
#pragma once

#include <boost/json/object.hpp>
#include <functional>

#include "app/control_service.h"

namespace meridian::app {

class ApiService;

// Adds the routes to api.routes() (before start) and subscribes the event hub to the service's
// health changes. Returns what undoes the subscription (ApiService's destructor calls it).
[[nodiscard]] std::function<void()> addMeridianRoutes(ApiService& api, ControlService& control,
                                                      bool metrics_without_key);

// The JSON of one health slot (GET /api/v1/health and the `health`/`override` events); `where` is
// the slot's [{"service", "region"}] list.
[[nodiscard]] boost::json::object endpointJson(const EndpointHealth& e,
                                               const georoute::ServiceSet* services);

}  // namespace meridian::app
