// The PowerDNS-compatible zone endpoints of the API (docs/api.md "PowerDNS-compatible endpoints")
// on the control service: zones list and get, PATCH of rrsets through ControlService::patchZone
// (answered once the DNS workers serve the change), notify and rectify, statistics, search-data,
// and Meridian's audit log (GET /api/v1/audit). The facts PowerDNS keeps beside a zone that the
// zone file has no place for (kind, masters, account, soa_edit_api, metadata, comments, disabled
// records) are kept here and in the zone's attributes file (STATE/meta/ZONE.json, or
// ZONEFILE.meta.json without control.state_dir), written before the change is answered and read
// back at start (addPdnsRoutes). Control loop only.
#pragma once

#include "api/router.h"
#include "app/control_service.h"

namespace meridian::app {

// Adds the routes to `router`; `service` outlives it.
void addPdnsRoutes(api::Router& router, ControlService& service);

}  // namespace meridian::app
