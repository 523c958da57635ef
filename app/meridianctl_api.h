// meridianctl's commands over the management HTTP API (`--api URL --key KEY`) instead of the
// control socket: health, explain, reload and metrics, printed as the socket's commands print
// them, or the API's JSON with --json.
#pragma once

#include <string>
#include <vector>

namespace meridian::app {

// Runs `words` ("health", "explain NAME [TYPE] CLIENT", "reload", "metrics") against the API at
// `url` (http://HOST[:PORT]) with `key`. Exit status: 0 done, 1 the server refused or could not be
// reached (the message on stderr), 2 usage.
[[nodiscard]] int apiCommand(const std::string& url, const std::string& key,
                             const std::vector<std::string>& words, bool as_json);

}  // namespace meridian::app
