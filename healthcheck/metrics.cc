#include "healthcheck/metrics.h"

namespace meridian::healthcheck {

void addHealthFamilies(const Monitor& monitor, std::vector<core::MetricFamily>& out) {
  using core::MetricFamily;
  using core::MetricType;
  MetricFamily up("meridian_health_up",
                  "Verdict of a checked target's probes after rise/fall (1 up, 0 down)",
                  MetricType::kGauge);
  MetricFamily usable("meridian_health_usable",
                      "Whether steering hands the endpoint out (the verdict with any override: "
                      "force-up, force-down, drain)",
                      MetricType::kGauge);
  MetricFamily rtt("meridian_health_rtt_seconds",
                   "Smoothed RTT of a checked target's successful probes (absent until one)",
                   MetricType::kGauge);
  MetricFamily probes("meridian_health_probes_total", "Probes completed of a checked target",
                      MetricType::kCounter);
  MetricFamily failures("meridian_health_probe_failures_total",
                        "Probes of a checked target that failed", MetricType::kCounter);
  const auto& targets = monitor.targets();
  const auto& states = monitor.states();
  for (size_t i = 0; i < targets.size() && i < states.size(); ++i) {
    const Target& t = targets[i];
    const TargetState& s = states[i];
    const core::MetricLabels labels = {{"target", t.label}, {"address", t.address.to_string()}};
    usable.add(labels, s.usable() ? 1 : 0);
    if (!t.checked) continue;
    up.add(labels, s.up ? 1 : 0);
    if (s.rtt_us > 0) rtt.addValue(labels, static_cast<double>(s.rtt_us) / 1e6);
    probes.add(labels, s.probes);
    failures.add(labels, s.failures);
  }
  out.push_back(std::move(up));
  out.push_back(std::move(usable));
  out.push_back(std::move(rtt));
  out.push_back(std::move(probes));
  out.push_back(std::move(failures));
}

}  // namespace meridian::healthcheck
