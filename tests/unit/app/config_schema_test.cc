// The configuration's declarative description (app/config_schema.h): the generated reference is
// the one in docs/configuration.md, every documented key is one the parser reads (and every other
// key is unknown), restart-only keys are the ones restartOnlyChanges compares, and
// validateService reads one service as the parser does.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "app/config.h"
#include "app/config_schema.h"

using namespace meridian;

namespace {

Result<app::Config> fromText(const std::string& text) {
  const std::string path = "/tmp/meridian_config_schema_test.toml";
  {
    std::ofstream out(path);
    out << text;
  }
  app::CommandLine cmd;
  cmd.config_file = path;
  return app::loadConfig(cmd);
}

// A TOML document that gives `path` (a schema key) the value `value`, inside the entry of the
// array of tables it belongs to.
std::string documentSetting(const std::string& path, const std::string& value) {
  auto after = [&](const std::string& prefix) { return path.substr(prefix.size()); };
  auto starts = [&](const std::string& prefix) { return path.rfind(prefix, 0) == 0; };
  if (starts("service.pool.endpoints."))
    return "[[service]]\n[[service.pool]]\nendpoints = [{ " + after("service.pool.endpoints.") +
           " = " + value + " }]\n";
  if (starts("service.pool."))
    return "[[service]]\n[[service.pool]]\n" + after("service.pool.") + " = " + value + "\n";
  if (starts("api.key.")) return "[[api.key]]\n" + after("api.key.") + " = " + value + "\n";
  if (starts("recursion.forward."))
    return "[[recursion.forward]]\n" + after("recursion.forward.") + " = " + value + "\n";
  if (starts("service.geo."))
    return "[[service]]\n[service.geo]\n" + after("service.geo.") + " = " + value + "\n";
  const size_t dot = path.find('.');
  const std::string section = path.substr(0, dot), key = path.substr(dot + 1);
  const bool array =
      section == "zone" || section == "region" || section == "check" || section == "service";
  return (array ? "[[" + section + "]]\n" : "[" + section + "]\n") + key + " = " + value + "\n";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("config reference: docs/configuration.md is what `meridian config-reference` prints",
          "[config][schema]") {
  const std::string file = readFile(std::string(MERIDIAN_SOURCE_DIR) + "/docs/configuration.md");
  // On a difference: build/meridian config-reference > docs/configuration.md
  CHECK(file == app::configReference());
}

TEST_CASE("config schema: every key has a type, a default and a doc line, once",
          "[config][schema]") {
  std::set<std::string> seen;
  size_t keys = 0;
  for (const auto& s : app::configSchema()) {
    INFO(s.name);
    CHECK_FALSE(s.doc.empty());
    CHECK_FALSE(s.keys.empty());
    for (const auto& k : s.keys) {
      INFO(k.path);
      ++keys;
      CHECK(k.path.rfind(s.name + ".", 0) == 0);
      CHECK_FALSE(k.type.empty());
      CHECK_FALSE(k.default_value.empty());
      CHECK(k.doc.size() > 10);
      CHECK(seen.insert(k.path).second);
      // The help and the reference list it.
      CHECK_THAT(std::string(app::configKeysHelp()), Catch::Contains("  " + k.path + "  "));
      CHECK_THAT(app::configReference(), Catch::Contains("| `" + k.path + "` |"));
    }
  }
  CHECK(keys >= 60);
}

// Both directions: a documented key is read by the parser (a wrong value is an error about its
// value, never "unknown key"), and a key beside it that is not documented is unknown.
TEST_CASE("config schema: the parser reads exactly the documented keys", "[config][schema]") {
  for (const auto& s : app::configSchema()) {
    for (const auto& k : s.keys) {
      INFO(k.path);
      const std::string path =
          k.path.ends_with(".NAME") ? k.path.substr(0, k.path.size() - 4) + "eu" : k.path;
      // An inline table is a wrong value for every key; the error is about the key or below it.
      auto c = fromText(documentSetting(path, "{ bogus = 1 }"));
      REQUIRE_FALSE(c.has_value());
      CHECK_THAT(c.error().message, !Catch::Contains(path + ": unknown key"));
      CHECK_THAT(c.error().message, Catch::Contains(path));
      if (k.path.ends_with(".NAME")) continue;  // any name is a key there
      auto u = fromText(documentSetting(path + "_undocumented", "1"));
      REQUIRE_FALSE(u.has_value());
      CHECK_THAT(u.error().message, Catch::Contains(path + "_undocumented: unknown key"));
    }
  }
  auto s = fromText("[bogus]\nx = 1\n");
  REQUIRE_FALSE(s.has_value());
  CHECK_THAT(s.error().message, Catch::EndsWith(":1: bogus: unknown section"));
}

TEST_CASE("config schema: restartOnlyChanges compares every restart-only key",
          "[config][schema][reload]") {
  std::vector<std::string> restart;
  for (const auto& s : app::configSchema()) {
    for (const auto& k : s.keys) {
      if (k.reload == app::Reload::kRestart) restart.push_back(k.path);
    }
  }
  std::vector<std::string> compared;
  for (const auto& [key, value] : app::restartOnlyValues(app::Config{})) compared.push_back(key);
  CHECK(compared == restart);
  CHECK(restart == std::vector<std::string>{"server.listen",
                                            "server.threads",
                                            "server.tcp_idle_timeout_ms",
                                            "server.tcp_io_timeout_ms",
                                            "server.tcp_max_connections",
                                            "server.user",
                                            "server.group",
                                            "control.socket",
                                            "control.state_dir",
                                            "api.listen",
                                            "api.tls_certificate",
                                            "api.tls_key",
                                            "api.header_limit_bytes",
                                            "api.body_limit_bytes",
                                            "api.read_timeout_ms",
                                            "api.idle_timeout_ms",
                                            "api.write_timeout_ms",
                                            "api.max_connections",
                                            "api.stream_buffer_bytes",
                                            "api.stream_keepalive_ms",
                                            "api.events",
                                            "api.metrics_without_key",
                                            "dnstap.socket",
                                            "dnstap.file",
                                            "dnstap.identity",
                                            "dnstap.version",
                                            "dnstap.log_queries",
                                            "dnstap.log_responses",
                                            "dnstap.sample_rate",
                                            "dnstap.queue_size"});
}

// Changes made on purpose when the parser became table-driven.
TEST_CASE("config schema: one rule per kind of value", "[config][schema]") {
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           // Every boolean is strict, as rrl.enabled was (toml++ reads 1 as true).
           {"[server]\nrequire_cookie = 1\n", ":2: server.require_cookie must be true or false"},
           {"[geoip]\nuse_registered_country = 1\n",
            ":2: geoip.use_registered_country must be true or false"},
           {"[[check]]\nname = \"w\"\nverify_tls = 1\n",
            ":3: check.verify_tls must be true or false"},
           // An enum names the key's line, like every other value.
           {"[[check]]\nname = \"w\"\ntype = \"icmp\"\n",
            ":3: check.type must be tcp, http, https or dns"},
           {"[log]\nlevel = \"loud\"\n", ":2: log.level must be debug, info, warning or error"},
           // nan is a number, and out of every range (as before).
           {"[[region]]\nname = \"eu\"\nlatitude = nan\n",
            ":3: region.latitude must be a number from -90 to 90"},
           // One rule for every array of tables.
           {"zone = [1]\n", ":1: zone must be an array of tables ([[zone]])"},
           {"region = 1\n", ":1: region must be an array of tables ([[region]])"},
       }) {
    INFO(text);
    auto c = fromText(text);
    REQUIRE_FALSE(c.has_value());
    CHECK_THAT(c.error().message, Catch::EndsWith(want));
  }
  // An empty array of tables is no entries, for every one (it was for zone only).
  auto empty = fromText("zone = []\nregion = []\ncheck = []\nservice = []\n");
  REQUIRE(empty.has_value());
  CHECK(empty->steering.empty());
}

TEST_CASE("validateService: one service as the API receives it, with the parser's messages",
          "[config][schema][api]") {
  toml::table svc = toml::parse(R"(
name = "www.example.com"
ttl = 5
policy = ["up", "weighted"]
[geo]
default = ["eu"]
country = { DE = "europe" }
[[pool]]
region = "eu"
endpoints = ["192.0.2.1", { cname = "eu.cdn.example.net.", weight = 3, check = "none" }]
)");
  auto s = app::validateService(svc, "request");
  REQUIRE(s.has_value());
  CHECK(s->name == "www.example.com");
  CHECK(s->ttl == 5);
  CHECK(s->policy == std::vector<std::string>{"up", "weighted"});
  CHECK(s->geo.default_list == std::vector<std::string>{"eu"});
  CHECK(s->geo.named.at("country.DE") == "europe");
  REQUIRE(s->pools.size() == 1);
  REQUIRE(s->pools[0].endpoints.size() == 2);
  CHECK(s->pools[0].endpoints[1].cname == "eu.cdn.example.net.");
  CHECK(s->pools[0].endpoints[1].weight == 3);
  CHECK(s->where == "request: service");

  // A tree built in code (as from a JSON body) has no lines: its nodes are named by the origin.
  for (const auto& [change, want] :
       std::vector<std::pair<std::function<void(toml::table&)>, std::string>>{
           {[](toml::table& t) { t.insert_or_assign("ttl", 604801); },
            "request: service.ttl must be an integer from 0 to 604800"},
           {[](toml::table& t) { t.insert_or_assign("ttl", "5"); },
            "request: service.ttl must be an integer from 0 to 604800"},
           {[](toml::table& t) { t.insert_or_assign("colour", "red"); },
            "request: service.colour: unknown key"},
           {[](toml::table& t) { t.erase("name"); }, "request: service needs a name"},
           {[](toml::table& t) { t.insert_or_assign("pool", toml::array{toml::table{}}); },
            "request: service.pool needs a region"},
           {[](toml::table& t) {
              t.insert_or_assign("pool",
                                 toml::array{toml::table{
                                     {"region", "eu"},
                                     {"endpoints", toml::array{toml::table{{"address", "192.0.2.1"},
                                                                           {"weight", 0}}}}}});
            },
            "request: service.pool.endpoints.weight must be an integer from 1 to 1000000"},
           {[](toml::table& t) {
              t.insert_or_assign("geo", toml::table{{"planet", 1}});
            },
            "request: service.geo.planet: unknown key (default, continent, country, "
            "subdivision, cidr, asn)"},
       }) {
    toml::table t{{"name", "www.example.com"}};
    change(t);
    auto r = app::validateService(t, "request");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == want);
  }

  // A body parsed with a source name is named by its lines, as a file is.
  toml::table body = toml::parse(
      "name = \"a.example.\"\n[[pool]]\nregion = \"eu\"\n"
      "endpoints = [{ address = \"192.0.2.1\", cname = \"x.\" }]\n",
      std::string_view("body"));
  auto r = app::validateService(body, "body");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message ==
        "body:4: service.pool.endpoints: give exactly one of address or cname");
}

// The defaults the reference shows are the structs' (a default changed in one place only fails).
TEST_CASE("config schema: documented defaults are the structs' defaults", "[config][schema]") {
  std::map<std::string, std::string> def;
  for (const auto& s : app::configSchema()) {
    for (const auto& k : s.keys) def[k.path] = k.default_value;
  }
  auto text = [](auto v) {
    if constexpr (std::is_same_v<decltype(v), bool>) {
      return std::string(v ? "true" : "false");
    } else if constexpr (std::is_same_v<decltype(v), std::string>) {
      return v.empty() ? std::string("none") : v;
    } else {
      return std::to_string(v);
    }
  };
  auto c = app::loadConfig(app::CommandLine{});
  REQUIRE(c.has_value());
  const server::ServerSettings server;
  const server::ProtocolSettings& p = c->protocol;
  const server::RrlSettings& rrl = p.rrl;
  const georoute::CheckConfig check;
  const georoute::ServiceConfig service;
  const georoute::EndpointConfig endpoint;
  const georoute::Region region;
  for (const auto& [path, value] : std::vector<std::pair<std::string, std::string>>{
           {"server.threads", text(server.threads)},
           {"server.udp_max_payload", text(p.max_udp_payload)},
           {"server.nsid", text(p.nsid)},
           {"server.require_cookie", text(p.require_cookie)},
           {"server.tcp_idle_timeout_ms", text(server.tcp_idle_timeout_ms)},
           {"server.tcp_io_timeout_ms", text(server.tcp_io_timeout_ms)},
           {"server.tcp_max_connections", text(server.tcp_max_connections)},
           {"server.listen", "[\"" + c->server.listen.at(0).text() + "\"]"},
           {"rrl.enabled", text(rrl.enabled)},
           {"rrl.responses_per_second", text(rrl.responses_per_second)},
           {"rrl.slip", text(rrl.slip)},
           {"rrl.window", text(rrl.window)},
           {"rrl.ipv4_prefix_length", text(static_cast<int>(rrl.ipv4_prefix_length))},
           {"rrl.ipv6_prefix_length", text(static_cast<int>(rrl.ipv6_prefix_length))},
           {"rrl.table_size", text(rrl.table_size)},
           {"control.socket", text(c->control_socket)},
           {"log.level", text(c->log_level)},
           {"geoip.use_registered_country", text(c->steering.use_registered_country)},
           {"region.bias_km", text(static_cast<int>(region.bias_km))},
           {"check.type", text(check.type)},
           {"check.path", text(check.path)},
           {"check.expect_status",
            std::string("[").append(text(check.expect_status.at(0))).append("]")},
           {"check.verify_tls", text(check.verify_tls)},
           {"check.qname", text(check.dns_qname)},
           {"check.qtype", check.dns_qtype == 6 ? "SOA" : "?"},
           {"check.interval_ms", text(check.interval_ms)},
           {"check.timeout_ms", text(check.timeout_ms)},
           {"check.rise", text(check.rise)},
           {"check.fall", text(check.fall)},
           {"service.ttl", text(service.ttl)},
           {"service.first_n", text(service.first_n)},
           {"service.when_all_down", text(service.when_all_down)},
           {"service.weighted_prefix_v4", text(service.weighted_prefix_v4)},
           {"service.weighted_prefix_v6", text(service.weighted_prefix_v6)},
           {"service.policy", "[\"" + service.policy.at(0) + "\", \"" + service.policy.at(1) +
                                  "\", \"" + service.policy.at(2) + "\"]"},
           {"service.pool.endpoints.weight", text(endpoint.weight)},
           {"api.listen", "[\"" + c->api.http.listen.at(0).text() + "\"]"},
           {"api.header_limit_bytes", text(c->api.http.limits.header_bytes)},
           {"api.body_limit_bytes", text(c->api.http.limits.body_bytes)},
           {"api.read_timeout_ms", text(c->api.http.limits.read_timeout_ms)},
           {"api.idle_timeout_ms", text(c->api.http.limits.idle_timeout_ms)},
           {"api.write_timeout_ms", text(c->api.http.limits.write_timeout_ms)},
           {"api.max_connections", text(c->api.http.limits.max_connections)},
           {"api.stream_buffer_bytes", text(c->api.http.limits.stream_buffer_bytes)},
           {"api.stream_keepalive_ms", text(c->api.http.limits.stream_keepalive_ms)},
           {"api.events", text(c->api.events)},
           {"dnstap.socket", text(server.dnstap.socket_path)},
           {"dnstap.file", text(server.dnstap.file_path)},
           {"dnstap.log_queries", text(server.dnstap.log_queries)},
           {"dnstap.log_responses", text(server.dnstap.log_responses)},
           {"dnstap.sample_rate", text(server.dnstap.sample_rate)},
           {"dnstap.queue_size", text(server.dnstap.queue_size)},
           {"zone.serial_policy",
            std::string(zones::serialPolicyName(app::ZoneConfig{}.serial_policy))},
       }) {
    INFO(path);
    REQUIRE(def.count(path) == 1);
    CHECK(def[path] == value);
  }
  CHECK_THAT(def["check.port"], Catch::StartsWith(text(check.port) + " "));
}

// --set KEY[NAME] selects an entry of an array of tables by the key the schema names.
TEST_CASE("config schema: every array of tables has the key --set names its entries by",
          "[config][schema]") {
  size_t arrays = 0;
  for (const auto& s : app::configSchema()) {
    INFO(s.name);
    const std::string id = app::entryIdKey(s.name);
    if (s.header.rfind("[[", 0) != 0) {
      CHECK(id.empty());
      continue;
    }
    ++arrays;
    REQUIRE_FALSE(id.empty());
    bool documented = false;
    for (const auto& k : s.keys) documented = documented || k.path == s.name + "." + id;
    CHECK(documented);
  }
  CHECK(arrays == 7);
  CHECK(app::entryIdKey("api.key") == "name");
  CHECK(app::entryIdKey("recursion.forward") == "zone");
  CHECK(app::entryIdKey("service.pool") == "region");
  CHECK(app::entryIdKey("service") == "name");
}

TEST_CASE("[[zone]] serial_policy: increment by default, date or unixtime, anything else named",
          "[config][schema]") {
  const std::string zone = "[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\n";
  auto plain = fromText(zone);
  REQUIRE(plain.has_value());
  REQUIRE(plain->zones.size() == 1);
  CHECK(plain->zones[0].serial_policy == zones::SerialPolicy::kIncrement);
  for (const auto& [name, policy] : {std::pair{"increment", zones::SerialPolicy::kIncrement},
                                     std::pair{"date", zones::SerialPolicy::kDate},
                                     std::pair{"unixtime", zones::SerialPolicy::kUnixtime}}) {
    INFO(name);
    auto c = fromText(zone + "serial_policy = \"" + name + "\"\n");
    REQUIRE(c.has_value());
    CHECK(c->zones[0].serial_policy == policy);
    CHECK(zones::parseSerialPolicy(name) == policy);
    CHECK(zones::serialPolicyName(policy) == name);
  }
  auto bad = fromText(zone + "serial_policy = \"epoch\"\n");
  REQUIRE_FALSE(bad.has_value());
  CHECK_THAT(bad.error().message, Catch::Contains("serial_policy"));
  CHECK_THAT(bad.error().message, Catch::Contains(":4:"));
  CHECK_FALSE(zones::parseSerialPolicy("Date").has_value());
}

TEST_CASE("[dnstap]: a socket or a file, a power-of-two queue, paths from the config's directory",
          "[config][schema][dnstap]") {
  auto both = fromText("[dnstap]\nsocket = \"a.sock\"\nfile = \"b.fstrm\"\n");
  REQUIRE_FALSE(both.has_value());
  CHECK_THAT(both.error().message, Catch::Contains("set dnstap.socket or dnstap.file, not both"));
  auto odd = fromText("[dnstap]\nfile = \"t.fstrm\"\nqueue_size = 100\n");
  REQUIRE_FALSE(odd.has_value());
  CHECK_THAT(odd.error().message, Catch::EndsWith(":3: dnstap.queue_size must be a power of two"));
  auto ok = fromText("[dnstap]\nfile = \"t.fstrm\"\nsample_rate = 10\nlog_queries = false\n");
  REQUIRE(ok.has_value());
  CHECK(ok->server.dnstap.file_path == "/tmp/t.fstrm");
  CHECK(ok->server.dnstap.enabled());
  CHECK(ok->server.dnstap.sample_rate == 10);
  CHECK_FALSE(ok->server.dnstap.log_queries);
  CHECK(ok->server.dnstap.log_responses);
  CHECK_FALSE(fromText("")->server.dnstap.enabled());
  // Restart-only: a reload names the change.
  const auto changes = app::restartOnlyChanges(*fromText(""), *ok);
  CHECK(std::find_if(changes.begin(), changes.end(), [](const std::string& l) {
          return l.starts_with("dnstap.file changed");
        }) != changes.end());
}
