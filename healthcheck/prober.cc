// Checker implementations. Every probe is a coroutine on the control loop; the Monitor races it
// against the timeout with `||` (awaitable operators), which cancels the losing side: the probe's
// socket operation completes with operation_aborted and the probe returns. Socket errors are read
// as error codes (as_tuple), so the usual failures (refused, reset, bad status) cost no exception.
#include "healthcheck/prober.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <limits>

#include "dns/name.h"
#include "dns/response.h"
#include "dns/wire.h"

namespace meridian::healthcheck {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// The DNS probe's query has no OPT, so a compliant reply is at most 512 octets (RFC 1035 §4.2.1);
// 4096 leaves room for servers that ignore that. A longer datagram is cut and then fails as
// malformed.
constexpr size_t kMaxDnsReply = 4096;

uint32_t elapsedUs(Clock::time_point since) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - since).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(us, 1, std::numeric_limits<uint32_t>::max()));
}

// "Connection refused" → "connection refused", to read well after "DOWN after 3 failures: ".
std::string errorText(const boost::system::error_code& ec) {
  std::string m = ec.message();
  if (!m.empty() && m[0] >= 'A' && m[0] <= 'Z') m[0] = static_cast<char>(m[0] + 32);
  return m;
}

ProbeResult failure(std::string error) {
  return ProbeResult{false, 0, std::move(error)};
}

ProbeResult failure(std::string_view phase, const boost::system::error_code& ec) {
  if (phase.empty()) return failure(errorText(ec));
  return failure(std::string(phase) + ": " + errorText(ec));
}

bool hasLineBreak(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

std::string addressText(const asio::ip::address& a) {
  return a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
}

// The Host header (RFC 9110 §7.2): uri-host [":" port], the port omitted when it is the default.
std::string hostHeader(const CheckSpec& spec, const asio::ip::address& address) {
  if (!spec.host_header.empty()) return spec.host_header;
  const uint16_t default_port = spec.kind == CheckSpec::Kind::kHttps ? 443 : 80;
  std::string h = addressText(address);
  if (spec.port != default_port) h += ":" + std::to_string(spec.port);
  return h;
}

// The host part of a Host header: "[::1]:8443" → "::1", "example.com:8443" → "example.com".
std::string hostOnly(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return std::string(
        host.substr(1, close == std::string_view::npos ? host.size() - 1 : close - 1));
  }
  if (std::count(host.begin(), host.end(), ':') == 1) {
    return std::string(host.substr(0, host.find(':')));
  }
  return std::string(host);
}

const char* rcodeName(uint16_t rcode) {
  switch (rcode) {
    case dns::rcode::kNoError:
      return "NOERROR";
    case dns::rcode::kFormErr:
      return "FORMERR";
    case dns::rcode::kServFail:
      return "SERVFAIL";
    case dns::rcode::kNXDomain:
      return "NXDOMAIN";
    case dns::rcode::kNotImp:
      return "NOTIMP";
    case dns::rcode::kRefused:
      return "REFUSED";
    case dns::rcode::kYXDomain:
      return "YXDOMAIN";
    case 7:
      return "YXRRSET";
    case 8:
      return "NXRRSET";
    case dns::rcode::kNotAuth:
      return "NOTAUTH";
    case 10:
      return "NOTZONE";
  }
  return nullptr;
}

std::string qtypeText(uint16_t qtype) {
  namespace t = dns::rrtype;
  switch (qtype) {
    case t::kA:
      return "A";
    case t::kNS:
      return "NS";
    case t::kCNAME:
      return "CNAME";
    case t::kSOA:
      return "SOA";
    case t::kPTR:
      return "PTR";
    case t::kMX:
      return "MX";
    case t::kTXT:
      return "TXT";
    case t::kAAAA:
      return "AAAA";
    case t::kSRV:
      return "SRV";
    case t::kDNSKEY:
      return "DNSKEY";
    case t::kANY:
      return "ANY";
  }
  return "TYPE" + std::to_string(qtype);  // RFC 3597 §5
}

std::string statusList(const std::vector<int>& codes) {
  std::string out;
  for (const int c : codes) out += (out.empty() ? "" : ", ") + std::to_string(c);
  return out;
}

// Sends the request and reads the response; returns an empty string on success or the reason.
template <typename Stream>
asio::awaitable<std::string> httpExchange(Stream& stream, const CheckSpec& spec,
                                          const std::string& host) {
  http::request<http::empty_body> request{http::verb::get, spec.path, 11};
  request.set(http::field::host, host);
  request.set(http::field::user_agent, "meridian-healthcheck");
  // One request per connection: nothing is pooled between probes, each probe sees a fresh connect.
  request.set(http::field::connection, "close");
  auto [wec, written] = co_await http::async_write(stream, request, kTuple);
  if (wec) co_return "http write: " + errorText(wec);

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // we stop reading ourselves at kMaxBodyBytes
  auto [hec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, kTuple);
  if (hec) co_return "http read: " + errorText(hec);
  const int status = static_cast<int>(parser.get().result_int());
  if (std::find(spec.expect_status.begin(), spec.expect_status.end(), status) ==
      spec.expect_status.end()) {
    co_return "HTTP status " + std::to_string(status) + " (expected " +
        statusList(spec.expect_status) + ")";
  }
  if (spec.expect_body.empty()) co_return "";

  std::string body;
  // 8 KiB per read: a few reads cover a typical status page.
  std::array<char, 8192> chunk;
  while (!parser.is_done() && body.size() < kMaxBodyBytes) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return "http read body: " + errorText(ec);
    body.append(chunk.data(), chunk.size() - parser.get().body().size);
  }
  if (body.size() > kMaxBodyBytes) body.resize(kMaxBodyBytes);
  if (body.find(spec.expect_body) == std::string::npos) {
    // Long expectations are cut in the message: it goes into one log line.
    const std::string shown =
        spec.expect_body.size() > 40 ? spec.expect_body.substr(0, 40) + "..." : spec.expect_body;
    co_return "HTTP " + std::to_string(status) + " but body does not contain \"" + shown + "\"";
  }
  co_return "";
}

}  // namespace

const char* kindName(CheckSpec::Kind kind) {
  switch (kind) {
    case CheckSpec::Kind::kTcp:
      return "tcp";
    case CheckSpec::Kind::kHttp:
      return "http";
    case CheckSpec::Kind::kHttps:
      return "https";
    case CheckSpec::Kind::kDns:
      return "dns";
  }
  return "?";
}

std::optional<CheckSpec::Kind> parseKind(std::string_view text) {
  for (const auto k : {CheckSpec::Kind::kTcp, CheckSpec::Kind::kHttp, CheckSpec::Kind::kHttps,
                       CheckSpec::Kind::kDns}) {
    if (text == kindName(k)) return k;
  }
  return std::nullopt;
}

Result<void> validateCheck(const CheckSpec& spec) {
  const std::string where = "check '" + spec.name + "': ";
  if (spec.port == 0) return Error{where + "port must be 1..65535"};
  if (spec.interval_ms == 0) return Error{where + "interval_ms must be positive"};
  if (spec.timeout_ms == 0) return Error{where + "timeout_ms must be positive"};
  if (spec.rise == 0) return Error{where + "rise must be at least 1"};
  if (spec.fall == 0) return Error{where + "fall must be at least 1"};
  if (spec.kind == CheckSpec::Kind::kHttp || spec.kind == CheckSpec::Kind::kHttps) {
    if (spec.path.empty() || spec.path.front() != '/' || hasLineBreak(spec.path) ||
        spec.path.find(' ') != std::string::npos) {
      return Error{where + "path must start with '/' and contain no spaces or line breaks"};
    }
    if (hasLineBreak(spec.host_header)) return Error{where + "host_header contains a line break"};
    if (spec.expect_status.empty()) return Error{where + "expect_status is empty"};
    for (const int s : spec.expect_status) {
      if (s < 100 || s > 599) {
        return Error{where + "status " + std::to_string(s) + " is not 100..599"};
      }
    }
  }
  if (spec.kind == CheckSpec::Kind::kDns) {
    dns::NameBuf n;
    if (!dns::fromText(spec.dns_qname.empty() ? "." : spec.dns_qname, n)) {
      return Error{where + "dns_qname '" + spec.dns_qname + "' is not a domain name"};
    }
  }
  return {};
}

std::string describeCheck(const CheckSpec& spec) {
  switch (spec.kind) {
    case CheckSpec::Kind::kTcp:
      return "tcp";
    case CheckSpec::Kind::kHttp:
    case CheckSpec::Kind::kHttps:
      return std::string(kindName(spec.kind)) + " GET " + spec.path;
    case CheckSpec::Kind::kDns: {
      std::string q = spec.dns_qname.empty() ? "." : spec.dns_qname;
      if (q.back() != '.') q += '.';
      return "dns " + q + " " + qtypeText(spec.dns_qtype);
    }
  }
  return "?";
}

DnsReplyStatus checkDnsReply(const uint8_t* p, size_t size, uint16_t id, const uint8_t* qname_wire,
                             uint16_t qtype, std::string& error) {
  // dns/response.h does the reading; views for the largest reply probeDns() receives.
  std::array<dns::RecordView, dns::maxRecordsFor(kMaxDnsReply)> views;
  dns::Response reply;
  const dns::ResponseError parsed = dns::parseResponse(p, size, views, reply);
  // Too short to carry an ID, another ID, or not a response: not a reply to this query.
  if (parsed == dns::ResponseError::kTruncatedHeader) return DnsReplyStatus::kIgnore;
  const dns::QuestionMatch match =
      dns::matchQuestion(reply, id, qname_wire, qtype, dns::rrclass::kIN);
  if (match == dns::QuestionMatch::kNotResponse || match == dns::QuestionMatch::kOtherId) {
    return DnsReplyStatus::kIgnore;
  }
  if (reply.opcode != dns::opcode::kQuery) {
    error = "reply with opcode " + std::to_string(reply.opcode);
    return DnsReplyStatus::kFailure;
  }
  // Without EDNS in the query the reply has no OPT, so the 4 header bits are the whole rcode.
  const uint16_t rc = reply.flags & 0xF;
  if (rc != dns::rcode::kNoError) {
    const char* name = rcodeName(rc);
    error = std::string("rcode ") + (name ? name : std::to_string(rc));
    return DnsReplyStatus::kFailure;
  }
  if (parsed != dns::ResponseError::kOk) {
    error = "malformed reply: " + std::string(dns::responseErrorText(parsed)) + " (octet " +
            std::to_string(reply.error_offset) + ")";
    return DnsReplyStatus::kFailure;
  }
  // A reply without a question (QDCOUNT 0) is accepted, as before: the ID matched.
  if (match == dns::QuestionMatch::kOtherQuestion) {
    error = "reply for another question (" + dns::toText(reply.qname.data) + ")";
    return DnsReplyStatus::kFailure;
  }
  return DnsReplyStatus::kOk;
}

struct Prober::Tls {
  asio::ssl::context insecure{asio::ssl::context::tls_client};
  std::optional<asio::ssl::context> verifying;

  Tls() { insecure.set_verify_mode(asio::ssl::verify_none); }

  asio::ssl::context& get(bool verify) {
    if (!verify) return insecure;
    if (!verifying) {
      verifying.emplace(asio::ssl::context::tls_client);
      verifying->set_default_verify_paths();
      verifying->set_verify_mode(asio::ssl::verify_peer);
    }
    return *verifying;
  }
};

Prober::Prober() : tls_(std::make_unique<Tls>()), ids_(std::random_device{}()) {}
Prober::~Prober() = default;

asio::awaitable<ProbeResult> Prober::attempt(const CheckSpec& spec,
                                             const asio::ip::address& address) {
  try {
    switch (spec.kind) {
      case CheckSpec::Kind::kTcp:
        co_return co_await probeTcp(spec, address);
      case CheckSpec::Kind::kHttp:
      case CheckSpec::Kind::kHttps:
        co_return co_await probeHttp(spec, address);
      case CheckSpec::Kind::kDns:
        co_return co_await probeDns(spec, address);
    }
  } catch (const boost::system::system_error& e) {
    co_return failure("", e.code());
  } catch (const std::exception& e) {
    co_return failure(e.what());
  }
  co_return failure("unknown check kind");
}

asio::awaitable<ProbeResult> Prober::probeTcp(const CheckSpec& spec,
                                              const asio::ip::address& address) {
  tcp::socket socket(co_await asio::this_coro::executor);
  const auto started = Clock::now();
  auto [ec] = co_await socket.async_connect(tcp::endpoint(address, spec.port), kTuple);
  if (ec) co_return failure("", ec);
  const uint32_t rtt = elapsedUs(started);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  co_return ProbeResult{true, rtt, {}};
}

asio::awaitable<ProbeResult> Prober::probeHttp(const CheckSpec& spec,
                                               const asio::ip::address& address) {
  auto executor = co_await asio::this_coro::executor;
  const std::string host = hostHeader(spec, address);
  const tcp::endpoint endpoint(address, spec.port);
  const auto started = Clock::now();
  std::string problem;
  if (spec.kind == CheckSpec::Kind::kHttp) {
    tcp::socket socket(executor);
    auto [ec] = co_await socket.async_connect(endpoint, kTuple);
    if (ec) co_return failure("", ec);
    problem = co_await httpExchange(socket, spec, host);
  } else {
    asio::ssl::stream<tcp::socket> stream(executor, tls_->get(spec.verify_tls));
    auto [ec] = co_await stream.next_layer().async_connect(endpoint, kTuple);
    if (ec) co_return failure("", ec);
    const std::string name = hostOnly(host);
    boost::system::error_code not_ip;
    asio::ip::make_address(name, not_ip);
    // RFC 6066 §3: SNI carries host names only, never address literals.
    if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), name.c_str())) {
      co_return failure("tls: cannot set SNI name '" + name + "'");
    }
    if (spec.verify_tls) stream.set_verify_callback(asio::ssl::host_name_verification(name));
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) co_return failure("tls handshake", hec);
    problem = co_await httpExchange(stream, spec, host);
    // No TLS close_notify exchange: the request said "Connection: close" and a peer that lingers
    // over the shutdown would only stretch the probe.
  }
  if (!problem.empty()) co_return failure(std::move(problem));
  co_return ProbeResult{true, elapsedUs(started), {}};
}

asio::awaitable<ProbeResult> Prober::probeDns(const CheckSpec& spec,
                                              const asio::ip::address& address) {
  dns::NameBuf qname;
  if (!dns::fromText(spec.dns_qname.empty() ? "." : spec.dns_qname, qname)) {
    co_return failure("bad dns_qname '" + spec.dns_qname + "'");
  }
  const auto id = static_cast<uint16_t>(ids_());
  std::vector<uint8_t> query(dns::kHeaderSize + qname.length + 4, 0);
  dns::writeU16(query.data(), id);
  // RD set, as dnsdist's health queries do: resolvers answer it, authoritative servers ignore it.
  dns::writeU16(query.data() + 2, dns::flag::kRD);
  dns::writeU16(query.data() + 4, 1);
  std::copy(qname.data, qname.data + qname.length, query.begin() + dns::kHeaderSize);
  dns::writeU16(query.data() + dns::kHeaderSize + qname.length, spec.dns_qtype);
  dns::writeU16(query.data() + dns::kHeaderSize + qname.length + 2, dns::rrclass::kIN);

  udp::socket socket(co_await asio::this_coro::executor);
  boost::system::error_code oec;
  socket.open(address.is_v4() ? udp::v4() : udp::v6(), oec);
  if (oec) co_return failure("socket", oec);
  const auto started = Clock::now();
  // A connected socket receives only from the server, and reports its ICMP port unreachable as
  // "connection refused" at once instead of a timeout.
  auto [cec] = co_await socket.async_connect(udp::endpoint(address, spec.port), kTuple);
  if (cec) co_return failure("", cec);
  auto [sec, sent] = co_await socket.async_send(asio::buffer(query), kTuple);
  if (sec) co_return failure("send", sec);
  std::array<uint8_t, kMaxDnsReply> reply;
  for (;;) {
    auto [rec, n] = co_await socket.async_receive(asio::buffer(reply), kTuple);
    if (rec) co_return failure("", rec);
    std::string error;
    switch (checkDnsReply(reply.data(), n, id, qname.data, spec.dns_qtype, error)) {
      case DnsReplyStatus::kOk:
        co_return ProbeResult{true, elapsedUs(started), {}};
      case DnsReplyStatus::kFailure:
        co_return failure(std::move(error));
      case DnsReplyStatus::kIgnore:
        break;  // not ours (another ID): wait on until the deadline
    }
  }
}

}  // namespace meridian::healthcheck
