// The configuration's one declarative description: every key Meridian reads (path, type with its
// range or choices, default as shown to users, whether a reload applies it, a one-line doc) with
// how it is read into the Config or the entry struct. The TOML parser walks a file (after the
// --set overrides) against it; `meridian --help`, `meridian config-reference`
// (docs/configuration.md) and restartOnlyChanges() are derived from it; validateService() reads
// one [[service]] entry, as the management API receives it, with the same messages.
// Control side only (start-up, reload, API requests); exceptions from toml++ do not pass here.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "app/config.h"
#include "core/result.h"
#include "georoute/steering_config.h"

namespace meridian::app {

// What a reload does with a key.
enum class Reload {
  kLive,     // the reload applies it
  kRestart,  // read and compared; a change is reported ("applies at restart") and not applied
  kPartly,   // applies on reload in some cases, at restart in others (the doc says which)
};

// One key as documented. `path` is dotted from the section: "server.tcp_io_timeout_ms",
// "service.pool.endpoints.weight"; a part written NAME or CODE stands for any key there
// ("lists.NAME", "service.geo.country.CODE").
struct KeyDoc {
  std::string path;
  std::string type;           // "integer 0..3600000", "boolean", "debug, info, warning or error"
  std::string default_value;  // as shown to users
  Reload reload = Reload::kLive;
  std::string doc;
};

// One section (a table, an array of tables, or a key's sub-table) and its keys, in the order of
// the reference.
struct SectionDoc {
  std::string name;    // "server", "[[service.pool]]", "service.pool.endpoints"
  std::string header;  // as written in TOML: "[server]", "[[service.pool]]"
  std::string doc;
  std::vector<KeyDoc> keys;
};

// Every section and key the parser accepts: nothing outside this list is read.
[[nodiscard]] std::vector<SectionDoc> configSchema();

// The Markdown configuration reference (docs/configuration.md, `meridian config-reference`).
[[nodiscard]] std::string configReference();

// The same reference as the man page meridian.toml(5) (roff), for `meridian config-reference
// --format man` and the package.
[[nodiscard]] std::string configManPage(const std::string& version);

// Reads a parsed configuration tree (the file after --set) into `cfg`. `file` names the file in
// messages ("" when there is none: such nodes are named "--set"); relative paths are resolved
// against `base`. `listen_set` is set when server.listen was given.
[[nodiscard]] Result<void> readConfigTree(const toml::table& root, const std::string& file,
                                          const std::filesystem::path& base, Config& cfg,
                                          bool& listen_set);

// The key that names an entry of the array of tables `array` ("service" -> "name",
// "service.pool" -> "region"), as --set selects it (service[NAME].pool[REGION].check); "" for one
// that is not an array of tables.
[[nodiscard]] std::string entryIdKey(const std::string& array);

// The keys whose reload is Reload::kRestart, each with its value as read ("5000", "[127.0.0.1:53]",
// "none"), in schema order: what restartOnlyChanges compares.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> restartOnlyValues(const Config& c);

// Validates one service given as a tree (the body of one [[service]] entry: name, ttl, policy,
// pool, geo, ...) exactly as the configuration parser does, with the same messages. Nodes that
// carry a source position (a tree toml::parse()d with a source name) are named "SOURCE:LINE:
// KEY"; others "ORIGIN: KEY" (e.g. "request: service.ttl must be an integer from 0 to 604800").
// Relative names do not occur in a service. Cross-references (regions, checks, zones) are checked
// when the steering is compiled (compileSteering), which needs the whole configuration.
[[nodiscard]] Result<georoute::ServiceConfig> validateService(const toml::table& service,
                                                              const std::string& origin);

}  // namespace meridian::app
