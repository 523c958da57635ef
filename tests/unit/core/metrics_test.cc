// The Prometheus text renderer (core/metrics.h): HELP and TYPE lines, label and HELP escaping as
// the 0.0.4 text format asks, integer and float values, histograms' cumulative buckets.
#include <catch2/catch.hpp>
#include <string>

#include "core/metrics.h"

using namespace meridian;
using core::MetricFamily;
using core::MetricType;

TEST_CASE("prometheus: families, labels and escaping", "[metrics]") {
  std::vector<MetricFamily> f;
  f.emplace_back("m_queries_total", "Queries\nby \\ transport", MetricType::kCounter);
  f.back().add({{"transport", "udp"}}, 18446744073709551615u);  // exact, not via double
  f.back().add({{"transport", "tcp"}}, 0);
  f.emplace_back("m_rtt_seconds", "RTT", MetricType::kGauge);
  f.back().addValue({{"target", "eu/\"a\"\\b\nc"}, {"address", "192.0.2.1"}}, 0.0125);
  f.emplace_back("m_up", "Up", MetricType::kGauge);
  f.back().add({}, 1);
  f.emplace_back("m_empty_total", "Nothing yet", MetricType::kCounter);
  CHECK(core::renderPrometheus(f) ==
        "# HELP m_queries_total Queries\\nby \\\\ transport\n"
        "# TYPE m_queries_total counter\n"
        "m_queries_total{transport=\"udp\"} 18446744073709551615\n"
        "m_queries_total{transport=\"tcp\"} 0\n"
        "# HELP m_rtt_seconds RTT\n"
        "# TYPE m_rtt_seconds gauge\n"
        "m_rtt_seconds{target=\"eu/\\\"a\\\"\\\\b\\nc\",address=\"192.0.2.1\"} 0.0125\n"
        "# HELP m_up Up\n"
        "# TYPE m_up gauge\n"
        "m_up 1\n"
        "# HELP m_empty_total Nothing yet\n"
        "# TYPE m_empty_total counter\n");
}

TEST_CASE("prometheus: a histogram's buckets are cumulative and end in +Inf", "[metrics]") {
  std::vector<MetricFamily> f;
  f.emplace_back("m_latency_seconds", "Latency", MetricType::kHistogram);
  f.back().addHistogram({{"transport", "udp"}}, {0.00001, 0.0025}, {3, 0, 2}, 0.5);
  CHECK(core::renderPrometheus(f) ==
        "# HELP m_latency_seconds Latency\n"
        "# TYPE m_latency_seconds histogram\n"
        "m_latency_seconds_bucket{transport=\"udp\",le=\"1e-05\"} 3\n"
        "m_latency_seconds_bucket{transport=\"udp\",le=\"0.0025\"} 3\n"
        "m_latency_seconds_bucket{transport=\"udp\",le=\"+Inf\"} 5\n"
        "m_latency_seconds_sum{transport=\"udp\"} 0.5\n"
        "m_latency_seconds_count{transport=\"udp\"} 5\n");
}
