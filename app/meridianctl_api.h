// meridianctl's commands over the management HTTP API (`--api URL`): zones (list, show, import),
// records (add, remove), services, regions, health, overrides, explain, reload, metrics, audit,
// watch (the event stream) and version. Tables and text by default, the API's JSON with --json.
// The usage text is kApiUsage; exit statuses are ctl::Exit (meridianctl_http.h).
#pragma once

#include <string>
#include <vector>

#include "app/meridianctl_http.h"
#include "control/audit.h"

namespace meridian::app {

extern const char kApiUsage[];

// Runs `words` (the command and its arguments, e.g. {"records", "add", ...}) against `target`.
[[nodiscard]] int apiCommand(const ctl::ApiTarget& target, const std::vector<std::string>& words,
                             bool as_json);

// An audit entry as `meridianctl audit show` (local file) and `meridianctl --api ... audit` print
// it: one line, then "  - " / "  + " lines for the RRsets removed and added.
[[nodiscard]] std::string auditText(const control::AuditEntry& e);

}  // namespace meridian::app
