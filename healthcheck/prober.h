// Health checkers: one probe of one endpoint by TCP connect, HTTP/1.1 GET, HTTPS GET or a DNS query
// over UDP. Probes are Asio coroutines run on the control loop's io_context by the Monitor
// (monitor.h), never on DNS worker threads. A probe never throws: every failure, the timeout and
// cancellation come back as a ProbeResult with a one-line error a human can act on.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace meridian::healthcheck {

// One check as configured; the address comes from the target it is applied to.
struct CheckSpec {
  std::string name;
  enum class Kind { kTcp, kHttp, kHttps, kDns } kind = Kind::kTcp;
  uint16_t port = 0;
  // HTTP(S): the request target, the Host header (empty: the address, with the port when it is not
  // the scheme's default), the accepted status codes, and a substring the body must contain (empty:
  // the body is not read). Only the first kMaxBodyBytes of the body are searched.
  std::string path = "/";
  std::string host_header;
  std::vector<int> expect_status = {200};
  std::string expect_body;
  // HTTPS: verify the certificate chain against the system store and the name against host_header
  // (or the address). Off by default: a health check asks whether the service answers, not whether
  // its certificate is valid, and backends are often addressed by IP with internal certificates.
  bool verify_tls = false;
  // DNS: the question sent (empty qname: the root). Success is a well-formed reply with our ID,
  // our question and rcode NOERROR.
  std::string dns_qname;
  uint16_t dns_qtype = 1;
  uint32_t interval_ms = 5000, timeout_ms = 2000;
  // Anti-flap: `fall` failures in a row turn an up target down, `rise` successes in a row turn a
  // down target up (see monitor.h).
  uint32_t rise = 2, fall = 3;
};

// Bodies are searched in their first 64 KiB: enough for any status page, and it bounds what one
// probe may allocate whatever the backend sends.
inline constexpr size_t kMaxBodyBytes = 64 * 1024;

[[nodiscard]] const char* kindName(CheckSpec::Kind kind);  // "tcp", "http", "https", "dns"
[[nodiscard]] std::optional<CheckSpec::Kind> parseKind(std::string_view text);

// Checks what a configuration loader should refuse: port 0, zero timeout/interval/rise/fall, a path
// not starting with '/', CR/LF in path or Host (request splitting), status codes outside 100..599,
// an unparsable qname. The message names the check.
[[nodiscard]] Result<void> validateCheck(const CheckSpec& spec);

// "tcp", "http GET /health", "https GET /", "dns example.com. A" — for describe() and logs.
[[nodiscard]] std::string describeCheck(const CheckSpec& spec);

struct ProbeResult {
  bool ok = false;
  // Steady clock, from the start of the probe to its verdict, in µs; at least 1 when ok.
  uint32_t rtt_us = 0;
  std::string error;  // empty when ok
};

// What a DNS reply means for a probe that sent `id`, `qname`, `qtype` (class IN).
enum class DnsReplyStatus {
  kOk,       // well-formed, ours, NOERROR
  kIgnore,   // not a reply to this query (QR clear or another ID): keep waiting
  kFailure,  // ours but malformed, or an rcode other than NOERROR: the probe fails with `error`
};
[[nodiscard]] DnsReplyStatus checkDnsReply(const uint8_t* packet, size_t size, uint16_t id,
                                           const uint8_t* qname_wire, uint16_t qtype,
                                           std::string& error);

// What the Monitor runs for one probe: one attempt, with no deadline of its own. The Monitor races
// it against the check's timeout on its Clock (clock.h) and abandons it through per-operation
// cancellation when the timeout or Monitor::stop comes first, so an attempt must complete when its
// pending operation is cancelled. Prober is the real one; tests give a scripted fake
// (MonitorOptions::transport). Never throws.
class Transport {
 public:
  virtual ~Transport() = default;
  [[nodiscard]] virtual boost::asio::awaitable<ProbeResult> attempt(
      const CheckSpec& spec, const boost::asio::ip::address& address) = 0;
};

// Runs probes over real sockets. Holds the TLS client contexts shared by all HTTPS probes, and the
// generator of DNS query IDs. Used from the control loop thread only. RTTs are measured on the
// steady clock around the network exchange (see README).
class Prober final : public Transport {
 public:
  Prober();
  ~Prober() override;
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // One probe of `spec` against `address`. The caller keeps `spec`, `address` and this Prober
  // alive until the awaitable completes.
  [[nodiscard]] boost::asio::awaitable<ProbeResult> attempt(
      const CheckSpec& spec, const boost::asio::ip::address& address) override;

 private:
  boost::asio::awaitable<ProbeResult> probeTcp(const CheckSpec& spec,
                                               const boost::asio::ip::address& address);
  boost::asio::awaitable<ProbeResult> probeHttp(const CheckSpec& spec,
                                                const boost::asio::ip::address& address);
  boost::asio::awaitable<ProbeResult> probeDns(const CheckSpec& spec,
                                               const boost::asio::ip::address& address);

  struct Tls;  // OpenSSL client contexts, kept out of this header
  std::unique_ptr<Tls> tls_;
  std::mt19937 ids_;  // DNS query IDs; the socket is connected, so IDs only pair replies
};

}  // namespace meridian::healthcheck
