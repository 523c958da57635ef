#include "app/control_socket.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <sstream>

#include "healthcheck/monitor.h"

namespace meridian::app {

namespace {

std::string rttText(uint32_t us) {
  if (us == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", us / 1000.0);
  return buf;
}

std::string endpointText(const EndpointHealth& e) {
  return (e.address.find(':') != std::string::npos ? "[" + e.address + "]" : e.address) + ":" +
         std::to_string(e.port);
}

std::string streakText(const EndpointHealth& e) {
  if (e.opposing > 0) {
    return e.up ? std::to_string(e.opposing) + "/" + std::to_string(e.fall) + " failed"
                : std::to_string(e.opposing) + "/" + std::to_string(e.rise) + " ok";
  }
  if (e.consecutive > 0) return std::to_string(e.consecutive) + (e.up ? " ok" : " failed");
  return "-";
}

std::string error(const ServiceError& e) {
  return "error: " + e.message + "\n";
}

// "explain NAME [TYPE] CLIENT"
std::string explainCommand(ControlService& service, const std::string& args) {
  std::istringstream in(args);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (words.size() < 2 || words.size() > 3)
    return "error: usage: explain NAME [A|AAAA|CNAME] CLIENT-IP[/PREFIX]\n";
  ExplainRequest request;
  request.name = words.front();
  request.client = words.back();
  if (words.size() == 3) request.type = words[1];
  auto e = service.explain(request);
  return e ? "ok\n" + formatExplanation(*e) : error(e.error());
}

std::string overrideCommand(ControlService& service, const std::string& args) {
  // override ADDRESS|LABEL|region:NAME|pool:SERVICE/REGION|service:NAME MODE
  // Labels may contain spaces ("192.0.2.1 (web)"): the mode is the last word.
  const size_t sp = args.rfind(' ');
  if (sp == std::string::npos) {
    return "error: usage: override ADDRESS|LABEL|region:NAME|pool:SERVICE/REGION|service:NAME "
           "force-up|force-down|drain|none\n";
  }
  const std::string mode = args.substr(sp + 1);
  auto r = service.setOverride(args.substr(0, sp), mode);
  if (!r) return error(r.error());
  std::string reply = "ok\n";
  for (const auto& c : r->changes) reply += "  " + c.label + ": " + (c.ok ? mode : c.error) + "\n";
  return reply;
}

}  // namespace

std::string formatStats(const Stats& s) {
  std::ostringstream out;
  const auto& totals = s.totals;
  out << "uptime " << s.uptime_s << "s, workers " << s.workers << ", reloads " << s.reloads
      << " (loads run " << s.loads_run << ")\n";
  if (s.serving) {
    out << "listening";
    for (const auto& l : s.listening) out << " " << l;
    out << "\n";
  }
  out << "queries " << totals.queries << ", dropped " << totals.dropped << ", truncated "
      << totals.truncated << ", tcp connections " << totals.tcp_connections << "\n";
  out << "tcp closed: " << totals.tcp_evicted << " oldest idle (at the limit), "
      << totals.tcp_io_timeouts << " reset by the I/O timeout, " << totals.tcp_refused
      << " refused (all busy)\n";
  out << "rcodes: NOERROR " << totals.rcodes[0] << ", FORMERR " << totals.rcodes[1] << ", SERVFAIL "
      << totals.rcodes[2] << ", NXDOMAIN " << totals.rcodes[3] << ", NOTIMP " << totals.rcodes[4]
      << ", REFUSED " << totals.rcodes[5] << ", NOTAUTH " << totals.rcodes[9] << ", BADVERS "
      << totals.rcodes[16] << ", BADCOOKIE " << totals.rcodes[23] << "\n";
  out << "cookies: client only " << totals.cookie_client_only << ", valid " << totals.cookie_valid
      << ", invalid " << totals.cookie_invalid << "\n";
  if (s.rrl_enabled || totals.rrl_slipped + totals.rrl_dropped > 0) {
    out << "rrl: limited " << totals.rrl_slipped + totals.rrl_dropped << ", slipped "
        << totals.rrl_slipped << ", dropped " << totals.rrl_dropped << "\n";
  }
  if (totals.dnstap_sent + totals.dnstap_dropped > 0) {
    out << "dnstap: queued " << totals.dnstap_sent << ", dropped " << totals.dnstap_dropped << "\n";
  }
  for (const auto& z : s.zones) {
    out << "zone " << z.origin << " serial " << z.serial << " records " << z.records << " file "
        << z.file << "\n";
  }
  for (const auto& [name, err] : s.errors) out << "error " << name << ": " << err << "\n";
  for (const auto& g : s.geoip) {
    if (!g.path.empty()) out << "geoip " << g.path << " (" << g.type << ")\n";
    if (!g.error.empty()) out << "error geoip: " << g.error << "\n";
  }
  if (s.steering) {
    out << "services " << s.services << ", health targets " << s.health_targets
        << ", unchecked endpoints " << s.unchecked_endpoints << "\n";
  }
  if (!s.steering_error.empty()) out << "error steering: " << s.steering_error << "\n";
  out << "snapshots retired " << s.snapshots_retired << ", waiting " << s.snapshots_waiting << "\n";
  if (s.reload_running) {
    out << "reload in progress" << (s.reload_queued ? ", another queued" : "") << "\n";
  }
  return out.str();
}

std::string formatHealth(const std::vector<EndpointHealth>& endpoints) {
  if (endpoints.empty()) return "no health-checked endpoints\n";
  const std::vector<std::string> header = {"ID",      "TARGET",        "ADDRESS",   "CHECK",
                                           "VERDICT", "OVERRIDE",      "USABLE",    "RTT",
                                           "STREAK",  "PROBES/FAILED", "LAST ERROR"};
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& e : endpoints) {
    const char* override = healthcheck::overrideName(e.override);
    const char* usable = e.usable ? "yes" : "no";
    if (!e.checked) {
      rows.push_back({std::to_string(e.id), e.label, e.address.empty() ? "-" : e.address,
                      "unchecked", "up", override, usable, "-", "-", "-", "-"});
      continue;
    }
    rows.push_back({std::to_string(e.id), e.label, endpointText(e), e.check, e.up ? "up" : "down",
                    override, usable, rttText(e.rtt_us), streakText(e),
                    std::to_string(e.probes) + "/" + std::to_string(e.failures),
                    e.last_error.empty() ? "-" : e.last_error});
  }
  return healthcheck::alignColumns(rows);
}

std::string formatReload(const ReloadResult& r) {
  std::string text = (r.report.failed == 0 ? "ok " : "error ") + r.report.text() + "\n";
  for (const auto& w : r.report.warnings) text += "  warning: " + w + "\n";
  for (const auto& [name, err] : r.errors) text += "  " + name + ": " + err + "\n";
  return text;
}

std::string formatZones(const std::vector<ZoneInfo>& zones) {
  std::string out;
  for (const auto& z : zones) {
    out += "zone " + z.origin;
    if (z.served) {
      char when[32] = "-";
      std::tm tm{};
      if (z.loaded_at != 0 && ::gmtime_r(&z.loaded_at, &tm) != nullptr)
        std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      out += " serial " + std::to_string(z.serial) + " records " + std::to_string(z.records) +
             " loaded " + when;
    } else {
      out += " not served";
    }
    out += " file " + z.file + "\n";
    if (!z.error.empty()) out += "  error: " + z.error + "\n";
  }
  return out;
}

std::string formatExplanation(const Explanation& e) {
  std::string out;
  for (const auto& h : e.cnames) {
    out += h.from + " is a CNAME to " + h.to + " (zone " + h.zone + ", TTL " +
           std::to_string(h.ttl) + ")\n";
  }
  if (!e.steered) return out + e.name + " is not a steered service; the zone data answers it\n";
  out += "service " + e.service + " " + e.type + ", client " + e.client +
         (e.from_ecs ? " (as ECS)" : "") + "\n";
  std::string chain;
  for (const auto& f : e.policy) chain += (chain.empty() ? "" : " -> ") + f;
  out += "policy: " + chain + "\n";
  for (const auto& line : e.steps) out += "  " + line + "\n";
  if (!e.from_ecs) out += "  (no ECS: the scope would not be sent)\n";
  return out;
}

void runControlCommand(ControlService& service, const std::string& command,
                       std::function<void(std::string)> reply) {
  if (command == "reload") {
    // Answered when the reload is published (or coalesced into one that is); the loop serves
    // other connections meanwhile.
    service.reload([reply](const ReloadResult& r) { reply(formatReload(r)); });
    return;
  }
  if (command == "status") return reply("ok\n" + formatStats(service.stats()));
  if (command == "metrics") return reply("ok\n" + service.metrics());
  if (command == "health") return reply("ok\n" + formatHealth(service.health()));
  if (command == "zones") return reply("ok\n" + formatZones(service.listZones()));
  if (command.rfind("override ", 0) == 0) return reply(overrideCommand(service, command.substr(9)));
  if (command.rfind("explain ", 0) == 0) return reply(explainCommand(service, command.substr(8)));
  if (command == "stop") {
    reply("ok stopping\n");
    std::raise(SIGTERM);
    return;
  }
  reply("error: unknown command '" + command +
        "' (try reload, status, metrics, health, zones, override, explain, stop)\n");
}

}  // namespace meridian::app
