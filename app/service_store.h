// The services the management API creates (PUT /api/v1/services/{name}), and their store: the file
// STATE/services.toml, which holds them as [[service]] entries in the configuration's own syntax
// (an operator can read it, and a service moves into the configuration file by copying its
// entry). A request body is the JSON of one [[service]] table; it is turned into a TOML tree and
// read by validateService() (config_schema.h), so it is checked by the same key table and with the
// same messages as the configuration. Cross-references (the name inside a served zone, regions,
// checks) are the steering compile's, which the control service runs on the whole set.
// Control side only (runtime load, API requests).
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "georoute/steering_config.h"

namespace meridian::app {

// One API-made service: its canonical name ("www.example.com."), its [[service]] table as TOML
// text (the body of the entry, without the header) and the entry as read.
struct StoredService {
  std::string name;
  std::string toml;
  georoute::ServiceConfig config;
};

// The body of PUT /api/v1/services/{name} as a service: `body`'s members are the [[service]]
// keys (name optional; when given it must be `name`), checked by validateService() with messages
// "request: service.KEY ...". `name` is the path's, any case, trailing dot optional.
[[nodiscard]] Result<StoredService> serviceFromJson(const boost::json::object& body,
                                                    const std::string& name);

// The policy keys PUT /api/v1/services/{name}/policy may change (policy, first_n, when_all_down,
// weighted_prefix_v4, weighted_prefix_v6, geo): `svc` with those of `body` replaced, the rest kept,
// checked again. A key outside them is refused, naming it.
[[nodiscard]] Result<StoredService> withPolicy(const StoredService& svc,
                                               const boost::json::object& body);

// The stored definition as JSON (what GET /api/v1/services/{name} shows as "definition").
[[nodiscard]] boost::json::object definitionJson(const StoredService& svc);

// Reads the store; a missing file is an empty store. Errors name "PATH:LINE: KEY" as the
// configuration's do (or a name given twice).
[[nodiscard]] Result<std::vector<StoredService>> readServiceStore(const std::string& path);

// Replaces the store with `services` (sorted by name), as zone files are replaced
// (zones::writeFileAtomic: a temporary file, fsync, rename, directory fsync); on failure the old
// file is left as it was.
[[nodiscard]] Result<void> writeServiceStore(const std::string& path,
                                             const std::vector<StoredService>& services);

}  // namespace meridian::app
