#include "core/metrics.h"

#include <charconv>
#include <cmath>

namespace meridian::core {

namespace {

void escapeInto(std::string& out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// Go's ParseFloat reads what Prometheus writes: shortest round-trip digits, +Inf, -Inf, NaN.
void valueInto(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

const char* typeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void MetricFamily::addHistogram(const MetricLabels& labels, const std::vector<double>& bounds,
                                const std::vector<uint64_t>& counts, double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    MetricLabels l = labels;
    std::string le;
    if (i == bounds.size()) {
      le = "+Inf";
    } else {
      valueInto(le, bounds[i]);
    }
    l.emplace_back("le", le);
    samples.push_back({"_bucket", std::move(l), true, cumulative, 0});
  }
  samples.push_back({"_sum", labels, false, 0, sum});
  samples.push_back({"_count", labels, true, cumulative, 0});
}

std::string renderPrometheus(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& f : families) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    escapeInto(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += typeName(f.type);
    out += '\n';
    for (const MetricSample& s : f.samples) {
      out += f.name;
      out += s.suffix;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i > 0) out += ',';
          out += s.labels[i].first;
          out += "=\"";
          escapeInto(out, s.labels[i].second, true);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      if (s.integral) {
        out += std::to_string(s.count);
      } else {
        valueInto(out, s.value);
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace meridian::core
