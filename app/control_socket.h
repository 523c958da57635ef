// The control socket's protocol (control.socket, `meridianctl`): one command line in, one text
// reply out, formatted from the control service's structured results (control_service.h).
// Commands: reload, status, health, override WHAT MODE, zones, explain NAME [TYPE] CLIENT, stop.
// A reply starts with "ok" or "error"; meridianctl exits 1 on "error". Control thread only.
#pragma once

#include <functional>
#include <string>

#include "app/control_service.h"

namespace meridian::app {

// Runs `command` (without its newline); `reply` gets the text, at once or (reload) once the
// reload is published.
void runControlCommand(ControlService& service, const std::string& command,
                       std::function<void(std::string)> reply);

// The replies' bodies, for tests and for commands that print the same.
[[nodiscard]] std::string formatStats(const Stats& stats);
[[nodiscard]] std::string formatHealth(const std::vector<EndpointHealth>& endpoints);
[[nodiscard]] std::string formatReload(const ReloadResult& result);
[[nodiscard]] std::string formatZones(const std::vector<ZoneInfo>& zones);
// `meridian explain`'s output: the CNAMEs followed, then the steps of the decision.
[[nodiscard]] std::string formatExplanation(const Explanation& e);

}  // namespace meridian::app
