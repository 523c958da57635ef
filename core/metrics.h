// Metrics as the Prometheus text exposition format (version 0.0.4) shows them: families of
// samples with labels, rendered with their HELP and TYPE lines. Whoever owns a counter (the query
// path's per-worker counters in server/metrics.h, the health monitor, the reload queue) fills in
// families on the control thread when /metrics (or `meridianctl metrics`) is asked; nothing here is
// touched by the data plane.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace meridian::core {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricSample {
  std::string suffix;  // "" or, for a histogram, "_bucket", "_sum", "_count"
  MetricLabels labels;
  bool integral = true;  // counters and counts: printed exactly as integers
  uint64_t count = 0;
  double value = 0;
};

struct MetricFamily {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*, with _total for counters
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<MetricSample> samples;

  MetricFamily(std::string n, std::string h, MetricType t)
      : name(std::move(n)), help(std::move(h)), type(t) {}
  void add(MetricLabels labels, uint64_t count) {
    samples.push_back({"", std::move(labels), true, count, 0});
  }
  void addValue(MetricLabels labels, double value) {
    samples.push_back({"", std::move(labels), false, 0, value});
  }
  // A histogram's series: `bounds` are the upper bounds (le) in ascending order, `counts[i]` the
  // observations in bucket i alone (not cumulative; counts.size() == bounds.size() + 1, the last
  // one above every bound), `sum` the sum of the observed values.
  void addHistogram(const MetricLabels& labels, const std::vector<double>& bounds,
                    const std::vector<uint64_t>& counts, double sum);
};

// The exposition text: per family "# HELP", "# TYPE" and its samples, one a line, label values
// escaped (backslash, double quote, newline), HELP text escaped (backslash, newline). A family
// without samples shows its HELP and TYPE alone (so a scrape lists every metric Meridian has).
[[nodiscard]] std::string renderPrometheus(const std::vector<MetricFamily>& families);

// Content-Type of that text.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace meridian::core
