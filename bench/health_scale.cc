// Health-check scale bench (issue #7): N targets (default 10,000) probed every interval (1 s) by
// one Monitor on one control thread, against a UDP DNS responder on 127.0.0.1 (another thread).
// Prints how well the probe schedule is kept (gaps between one target's consecutive probes: median,
// p99, max, against the interval), probes per second, and the control thread's CPU time per probe.
// A figure, not a test. Uses only the Monitor API that predates issue #7, so the same file builds
// against the previous tree for a before/after comparison.
//
//   health_scale [TARGETS] [SECONDS] [INTERVAL_MS]
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "healthcheck/monitor.h"

using namespace meridian;
using Clock = std::chrono::steady_clock;

namespace {

double threadCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Answers every query with its own header and question, QR set, NOERROR, no records.
void respond(int fd, std::atomic<bool>& stop) {
  uint8_t buf[512];
  while (!stop.load(std::memory_order_relaxed)) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) continue;
    buf[2] |= 0x80;  // QR
    buf[3] &= 0xF0;  // RCODE 0
    ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
  const uint32_t interval = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 1000;

  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int size = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  timeval tv{0, 100000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return 1;
  socklen_t sl = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
  std::atomic<bool> stop{false};
  std::thread responder(respond, fd, std::ref(stop));

  boost::asio::io_context io;
  std::vector<healthcheck::Target> targets(n);
  // Copied from std::string objects rather than assigned from literals: GCC 12 at -O3 misreports
  // that assignment as an overlapping memcpy (as in commit 5a20892).
  const std::string kind_name("dns"), root(".");
  for (size_t i = 0; i < n; ++i) {
    auto& t = targets[i];
    t.id = static_cast<uint32_t>(i);
    t.label = std::to_string(i);
    t.address = boost::asio::ip::make_address("127.0.0.1");
    t.spec.name = kind_name;
    t.spec.kind = healthcheck::CheckSpec::Kind::kDns;
    t.spec.port = ntohs(sa.sin_port);
    t.spec.dns_qname = root;
    t.spec.dns_qtype = 6;
    t.spec.interval_ms = interval;
    t.spec.timeout_ms = std::min<uint32_t>(500, interval);
    t.spec.rise = 2;
    t.spec.fall = 3;
  }
  healthcheck::MonitorOptions options;
  options.max_start_jitter_ms = interval;
  healthcheck::Monitor monitor(io, std::move(targets), options);
  std::vector<Clock::time_point> last(n);
  std::vector<double> gaps_ms;
  gaps_ms.reserve(n * static_cast<size_t>(seconds) * 1000 / interval + n);
  uint64_t probes = 0, failed = 0, flips = 0;
  const auto warm = Clock::now() + std::chrono::milliseconds(interval * 2);  // after the jitter
  monitor.setListener([&](const healthcheck::Event& e) {
    if (e.from_override) return;
    const auto now = Clock::now();
    if (now >= warm) {
      ++probes;
      failed += !e.probe_ok;
      flips += e.verdict_changed;
      if (last[e.id] != Clock::time_point{})
        gaps_ms.push_back(std::chrono::duration<double, std::milli>(now - last[e.id]).count());
    }
    last[e.id] = now;
  });
  monitor.start();
  io.run_for(warm - Clock::now());
  const double cpu0 = threadCpuSeconds();
  const auto t0 = Clock::now();
  io.run_for(std::chrono::seconds(seconds));
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = threadCpuSeconds() - cpu0;
  monitor.stop();
  stop = true;
  responder.join();
  ::close(fd);

  std::sort(gaps_ms.begin(), gaps_ms.end());
  auto pct = [&](double p) {
    return gaps_ms.empty() ? 0.0 : gaps_ms[static_cast<size_t>(p * (gaps_ms.size() - 1))];
  };
  const double expected = static_cast<double>(n) * wall * 1000.0 / interval;
  std::printf("targets %zu, interval %u ms, measured %.1f s on one control thread\n", n, interval,
              wall);
  std::printf("probes %lu (%.0f/s; schedule %.1f %% of %.0f expected), failed %lu, flips %lu\n",
              static_cast<unsigned long>(probes), probes / wall, 100.0 * probes / expected,
              expected, static_cast<unsigned long>(failed), static_cast<unsigned long>(flips));
  std::printf("gap between a target's probes: median %.1f ms, p99 %.1f ms, max %.1f ms\n", pct(0.5),
              pct(0.99), gaps_ms.empty() ? 0.0 : gaps_ms.back());
  std::printf("control thread CPU %.2f s (%.0f %% of one core), %.1f us per probe\n", cpu,
              100.0 * cpu / wall, probes ? 1e6 * cpu / probes : 0.0);
  return 0;
}
