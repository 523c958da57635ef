// The user-space cost of answering, without sockets: loads a zone, turns a dnsperf query file
// (`name TYPE` lines) into wire queries as dnsperf sends them (RD set, no EDNS), answers each once
// to warm up and then ROUNDS times more through one QueryHandler, as a UDP worker does. Run it
// under `valgrind --tool=callgrind --toggle-collect='*QueryHandler::handle*'` for the exact
// instructions per query of the pipeline alone (bench/README.md, "Profile"); on its own it prints
// the wall time per query, which on a shared machine is only a rough guide.
//
// Usage: handle_cost ZONEFILE ORIGIN QUERYFILE [ROUNDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "server/pipeline.h"
#include "zones/loader.h"

using namespace meridian;

namespace {

uint16_t typeCode(const std::string& t) {
  static const std::pair<const char*, uint16_t> kTypes[] = {
      {"A", 1},    {"NS", 2},    {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"MX", 15},
      {"TXT", 16}, {"AAAA", 28}, {"SRV", 33},  {"DS", 43}, {"ANY", 255}};
  for (const auto& [name, code] : kTypes) {
    if (t == name) return code;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ZONEFILE ORIGIN QUERYFILE [ROUNDS]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 1;
  auto z = zones::loadZoneFile(argv[2], argv[1]);
  if (!z) {
    std::fprintf(stderr, "handle_cost: %s\n", z.error().message.c_str());
    return 1;
  }
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet({z->zone});
  server::MetricRegistry metric_names;  // the zone's metric slot, as the runtime assigns it
  metric_names.assign(*state);
  QuiescentDomain domain;
  Published<server::ServingState> published{state, domain};
  server::QueryHandler handler(published);

  std::vector<std::vector<uint8_t>> queries;
  std::ifstream in(argv[3]);
  std::string line;
  uint16_t id = 0;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name, type;
    if (!(words >> name >> type)) continue;
    dns::NameBuf n;
    const uint16_t code = typeCode(type);
    if (code == 0 || !dns::fromText(name, n)) continue;
    std::vector<uint8_t> q(12, 0);
    dns::writeU16(q.data(), ++id);
    dns::writeU16(q.data() + 2, dns::flag::kRD);
    dns::writeU16(q.data() + 4, 1);
    q.insert(q.end(), n.data, n.data + n.length);
    q.resize(q.size() + 4);
    dns::writeU16(q.data() + q.size() - 4, code);
    dns::writeU16(q.data() + q.size() - 2, dns::rrclass::kIN);
    queries.push_back(std::move(q));
  }
  if (queries.empty()) {
    std::fprintf(stderr, "handle_cost: no queries in %s\n", argv[3]);
    return 1;
  }
  server::Peer peer;
  peer.known = true;
  peer.address[0] = 127;
  peer.address[3] = 1;
  static uint8_t out[4096];
  size_t bytes = 0;
  for (const auto& q : queries) {
    bytes += handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer);
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const auto& q : queries) {
      bytes += handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double n = static_cast<double>(queries.size()) * rounds;
  std::printf("%zu queries x %d rounds (+1 warm-up): %.3f us/query wall, %.1f octets/answer\n",
              queries.size(), rounds, rounds > 0 ? s * 1e6 / n : 0.0,
              static_cast<double>(bytes) / (n + static_cast<double>(queries.size())));
  return 0;
}
