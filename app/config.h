// Meridian's configuration: a TOML file (toml++) plus command-line flags (--listen, --zone,
// --threads) and --set key=value overrides. Parsed and validated on the control thread at start-up
// and on every reload, against the key table of config_schema.h; every error names the file, line
// and key.
#pragma once

#include <string>
#include <vector>

#include "api/auth.h"
#include "api/settings.h"
#include "core/result.h"
#include "georoute/steering_config.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "zones/serial.h"

namespace meridian::app {

struct ZoneConfig {
  std::string name;  // absolute, with trailing dot
  std::string file;  // resolved against the config file's directory
  // zone.serial_policy: how a change through the API moves the SOA serial (zones/serial.h).
  zones::SerialPolicy serial_policy = zones::SerialPolicy::kIncrement;
};

// [api] (docs/api.md): the HTTP server's settings and keys; no key, no API.
struct ApiConfig {
  api::HttpSettings http;
  std::vector<api::KeyConfig> keys;
  size_t events = 1024;              // the event ring (api/events.h)
  bool metrics_without_key = false;  // GET /metrics answers without X-API-Key
};

struct Config {
  std::string source;  // the config file, or "" when running from flags only
  server::ServerSettings server;
  server::ProtocolSettings protocol;
  server::RecursionSettings recursion = server::RecursionSettings::defaults();  // [recursion]
  bool cookie_secret_set = false;  // server.cookie_secret given; else the runtime picks one
  std::vector<ZoneConfig> zones;
  std::string control_socket;
  // control.state_dir: journals and the audit log ("" = journals beside the zone files, no audit).
  std::string state_dir;
  std::string log_level = "info";
  // server.user, server.group: who the server becomes once its sockets are bound ("" = stay).
  std::string run_user;
  std::string run_group;
  georoute::SteeringConfig steering;
  ApiConfig api;
};

struct CommandLine {
  std::string config_file;
  std::vector<std::string> listen;
  std::vector<std::string> zones;  // "name=path"
  std::vector<std::string> sets;   // "key=value"
  int threads = -1;
  std::string log_level;  // --log-level, which wins over log.level (also on reload); "" = none
};

// Number of CPUs this process may run on (its affinity mask), so `taskset -c 0` means one worker.
[[nodiscard]] unsigned allowedCpus();

// Reads the file (if any), applies --set overrides and flags, validates.
[[nodiscard]] Result<Config> loadConfig(const CommandLine& cmd);

// Sets the process's log level: the --log-level flag when given, else the configuration's
// log.level (both already validated). Called at start-up and on every reload.
void applyLogLevel(const CommandLine& cmd, const Config& config);

// The keys that a reload reads but cannot apply (the sockets, workers and TCP limits are set up
// once, at start: the key table's Reload::kRestart keys), one line per key whose value differs
// between the `running` configuration and the reloaded `next` one: "server.tcp_io_timeout_ms
// changed from 5000 to 2000: applies at restart". The reload logs each line and returns them in its
// LoadReport (meridianctl reload). rrl.enabled and rrl.table_size, which depend on what ran at
// start, are reported by the runtime.
[[nodiscard]] std::vector<std::string> restartOnlyChanges(const Config& running,
                                                          const Config& next);

// The configuration keys, for `meridian --help`: generated from the key table (config_schema.h),
// like docs/configuration.md.
[[nodiscard]] const char* configKeysHelp();

}  // namespace meridian::app
