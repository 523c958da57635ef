// restartOnlyChanges (app/config.cc): what a reload reports for keys it reads but cannot apply
// until a restart (listen addresses, workers, TCP limits, the control socket).
#include <catch2/catch.hpp>

#include "app/config.h"

using namespace meridian;

namespace {

app::Config withSets(std::vector<std::string> sets) {
  app::CommandLine cmd;
  cmd.sets = std::move(sets);
  auto c = app::loadConfig(cmd);
  REQUIRE(c.has_value());
  return *c;
}

}  // namespace

TEST_CASE("restartOnlyChanges: one line per changed restart-only key", "[config][reload]") {
  const app::Config running = withSets({"server.threads=2"});
  CHECK(app::restartOnlyChanges(running, running).empty());
  // Keys that apply live change nothing here.
  CHECK(app::restartOnlyChanges(running, withSets({"server.threads=2", "server.nsid=x",
                                                   "log.level=debug", "rrl.slip=1"}))
            .empty());

  CHECK(app::restartOnlyChanges(running,
                                withSets({"server.threads=2", "server.tcp_io_timeout_ms=2000"})) ==
        std::vector<std::string>{
            "server.tcp_io_timeout_ms changed from 5000 to 2000: applies at restart"});

  const auto all = app::restartOnlyChanges(
      running, withSets({R"(server.listen=["127.0.0.1:5300", "[::1]:5300"])", "server.threads=4",
                         "server.tcp_idle_timeout_ms=3000", "server.tcp_io_timeout_ms=0",
                         "server.tcp_max_connections=50", "control.socket=/run/m.sock"}));
  CHECK(all == std::vector<std::string>{
                   "server.listen changed from [127.0.0.1:53] to [127.0.0.1:5300, [::1]:5300]: "
                   "applies at restart",
                   "server.threads changed from 2 to 4: applies at restart",
                   "server.tcp_idle_timeout_ms changed from 10000 to 3000: applies at restart",
                   "server.tcp_io_timeout_ms changed from 5000 to 0: applies at restart",
                   "server.tcp_max_connections changed from 0 to 50: applies at restart",
                   "control.socket changed from none to \"/run/m.sock\": applies at restart"});
}
