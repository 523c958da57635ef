// The health checks' Prometheus families, for /metrics and `meridianctl metrics`: per target its
// verdict, whether steering may use it (overrides applied), smoothed RTT, probes and failures.
// Control thread (reads the Monitor's TargetStates).
#pragma once

#include <vector>

#include "core/metrics.h"
#include "healthcheck/monitor.h"

namespace meridian::healthcheck {

void addHealthFamilies(const Monitor& monitor, std::vector<core::MetricFamily>& out);

}  // namespace meridian::healthcheck
