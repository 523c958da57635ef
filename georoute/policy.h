// The policy chain run per query over a compiled Service (service.h): decide() filters the
// service's endpoints through its filters (up, geo, nearest, latency, weighted, first_n) on a
// fixed-size array of candidates and returns the answer and its ECS scope. DNS workers call it for
// every steered query (no allocation, no locks, no string hashing); `meridian explain` calls it
// with a Trace that records each step. Implemented in policy.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "georoute/service.h"
#include "healthcheck/state.h"

namespace meridian::georoute {

// The client as steering sees it.
struct Client {
  bool ipv6 = false;
  uint8_t address[16] = {};   // the ECS address when trusted and present, else the source address
  uint8_t source_prefix = 0;  // ECS SOURCE PREFIX-LENGTH, or the full length for source addresses
  bool from_ecs = false;
};

// Explain output: one line per step.
struct Trace {
  std::vector<std::string> lines;
};

// Up to this many endpoints are considered per query; more in one service is refused at load.
inline constexpr size_t kMaxCandidates = 64;

struct Decision {
  enum class Kind { kAnswer, kNoData, kServFail, kFallback } kind = Kind::kAnswer;
  uint16_t count = 0;
  std::array<const Endpoint*, kMaxCandidates> chosen{};
  uint8_t scope = 0;  // ECS SCOPE PREFIX-LENGTH the decision depends on
};

// Decides the answer for `qtype` (A, AAAA or CNAME) of service `s`.
[[nodiscard]] Decision decide(const ServiceSet& set, const Service& s, uint16_t qtype,
                              const Client& client, const healthcheck::Verdicts& health,
                              Trace* trace = nullptr);

// The filter's name as configured and as explain prints it ("up", "geo", ...).
[[nodiscard]] const char* filterName(FilterKind k);
// "answer", "nodata", "servfail", "fallback": the metrics' decision label and the API's explain.
[[nodiscard]] const char* decisionName(Decision::Kind k);

// Great-circle distance in km (haversine), what `nearest` ranks regions by.
[[nodiscard]] double distanceKm(double lat1, double lon1, double lat2, double lon2);

}  // namespace meridian::georoute
