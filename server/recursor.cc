#include "server/recursor.h"

#include <pthread.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>
#include <ctime>
#include <span>
#include <vector>

#include "core/log.h"
#include "dns/cookie.h"
#include "dns/name.h"
#include "dns/response.h"
#include "resolver/root_hints.h"

namespace meridian::server {

namespace asio = boost::asio;
namespace rc = dns::rcode;

std::unique_ptr<PendingQuery> parkQuery(const ServingState& state, const uint8_t* in, size_t len,
                                        Transport transport, const Peer& peer) {
  auto p = std::make_unique<PendingQuery>();
  p->query.assign(in, in + len);
  p->peer = peer;
  p->transport = transport;
  p->settings = state.protocol.recursion;
  p->max_udp_payload = state.protocol.max_udp_payload;
  p->nsid = state.protocol.nsid;
  std::memcpy(p->cookie_secret, state.protocol.cookie_secret, 16);
  return p;
}

Recursor::Recursor() = default;

Recursor::~Recursor() {
  stop();
}

void Recursor::start() {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  forwarder_ = std::make_unique<resolver::Forwarder>(io_);
  transport_ = std::make_unique<resolver::AsioTransport>(io_);
  thread_ = std::thread([this] { io_.run(); });
  ::pthread_setname_np(thread_.native_handle(), "meridian-rec");
}

void Recursor::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_relaxed);
  asio::post(io_, [this] {
    forwarder_.reset();  // completes what is in flight through finish()
    // The iterator's questions in flight are dropped (the server is going away): their sockets
    // closed, their callbacks never called, then the iterator goes.
    if (transport_) transport_->shutdown();
    iterator_.reset();
    work_.reset();
  });
  thread_.join();
}

void Recursor::submit(std::unique_ptr<PendingQuery> p) {
  if (stopping_.load(std::memory_order_relaxed)) return;
  submitted_.fetch_add(1, std::memory_order_relaxed);
  asio::post(io_, [this, sp = std::shared_ptr<PendingQuery>(std::move(p))]() mutable {
    handle(std::move(sp));
  });
}

RecursorTotals Recursor::totals() const {
  RecursorTotals t;
  t.submitted = submitted_.load(std::memory_order_relaxed);
  t.answered = answered_.load(std::memory_order_relaxed);
  t.over_limit = over_limit_.load(std::memory_order_relaxed);
  t.upstream_queries = upstream_.load(std::memory_order_relaxed);
  t.shared = shared_.load(std::memory_order_relaxed);
  return t;
}

std::string Recursor::clientKey(const Peer& peer) {
  return std::string(reinterpret_cast<const char*>(peer.address), peer.ipv6 ? 16 : 4);
}

void Recursor::handle(std::shared_ptr<PendingQuery> p) {
  if (forwarder_ == nullptr || p->settings == nullptr) return;  // stopping
  const RecursionSettings& s = *p->settings;
  if (configured_ != p->settings) {
    // A reload: rebuild the channels if the forward zones changed (the Forwarder compares).
    for (const auto& e : forwarder_->configure(s.forward)) log::error("recursion: " + e);
    configureIterator(s);
    configured_ = p->settings;
  }
  if (dns::parseQuery(p->query.data(), p->query.size(), query_) != dns::ParseStatus::kOk) return;
  unsigned& mine = per_client_[clientKey(p->peer)];
  if (outstanding_ >= s.max_outstanding || mine >= s.max_outstanding_per_client) {
    over_limit_.fetch_add(1, std::memory_order_relaxed);
    if (mine == 0) per_client_.erase(clientKey(p->peer));
    return;
  }
  ++outstanding_;
  ++mine;
  const dns::Query& q = query_;
  resolver::ForwardQuestion fq{q.qname.data, q.qname.length, q.qtype, q.qclass, q.dnssec_ok};
  const uint64_t before = forwarder_->upstreamQueries();
  const bool sent = forwarder_->resolve(fq, [this, p](const resolver::ForwardResult& r) {
    const uint16_t code = r.status == resolver::ForwardStatus::kTimeout ? ede::kNoReachableAuthority
                                                                        : ede::kNetworkError;
    finish(*p, r.status == resolver::ForwardStatus::kAnswer ? &r : nullptr, code);
  });
  if (!sent) {
    // No forward zone covers the name: the iterator, from the root hints.
    iterate(p);
    return;
  }
  if (forwarder_->upstreamQueries() == before) shared_.fetch_add(1, std::memory_order_relaxed);
  upstream_.store(forwarder_->upstreamQueries() + transport_->sent(), std::memory_order_relaxed);
}

void Recursor::configureIterator(const RecursionSettings& s) {
  const resolver::Limits& l = s.limits;
  std::erase_if(retired_iterators_, [](const auto& it) { return it->inFlight() == 0; });
  if (iterator_ && iterator_hints_ == s.root_hints && configured_ && configured_->limits == l) {
    return;
  }
  auto hints = resolver::loadRootHints(s.root_hints, /*ipv6=*/false);
  if (!hints) {
    // Questions no forwarder covers get SERVFAIL with EDE 22 until a reload fixes the file.
    log::error("recursion: " + hints.error().message + "; iteration is off until it is fixed");
    iterator_.reset();
  } else {
    // A new iterator starts without the zone cuts and server RTTs the old one learned; questions
    // the old one still has in flight complete through it (it is kept until they have).
    if (iterator_) retired_iterators_.push_back(std::move(iterator_));
    iterator_ = std::make_unique<resolver::Iterator>(*transport_, l, std::move(*hints));
  }
  iterator_hints_ = s.root_hints;
}

namespace {

// The iterator's result as the message an upstream would have sent: the client's question, then
// the answer and authority records uncompressed (buildReply copies everything after the question).
void outcomeMessage(const dns::Query& q, const resolver::Outcome& o, std::vector<uint8_t>& m) {
  m.clear();
  auto u16 = [&m](uint16_t v) {
    m.push_back(static_cast<uint8_t>(v >> 8));
    m.push_back(static_cast<uint8_t>(v & 0xFF));
  };
  auto u32 = [&](uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v & 0xFFFF));
  };
  u16(q.id);
  u16(static_cast<uint16_t>(dns::flag::kQR | dns::flag::kRA | (o.rcode & 0xF)));
  u16(1);
  u16(static_cast<uint16_t>(o.answer.size()));
  u16(static_cast<uint16_t>(o.authority.size()));
  u16(0);
  m.insert(m.end(), q.qname.data, q.qname.data + q.qname.length);
  u16(q.qtype);
  u16(q.qclass);
  for (const auto* section : {&o.answer, &o.authority}) {
    for (const resolver::Record& r : *section) {
      m.insert(m.end(), r.owner.begin(), r.owner.end());
      u16(r.type);
      u16(r.rclass);
      u32(r.ttl);
      u16(static_cast<uint16_t>(r.rdata.size()));
      m.insert(m.end(), r.rdata.begin(), r.rdata.end());
    }
  }
}

}  // namespace

void Recursor::iterate(const std::shared_ptr<PendingQuery>& p) {
  if (!iterator_) {
    finish(*p, nullptr, ede::kNoReachableAuthority);
    return;
  }
  const dns::Query& q = query_;
  iterator_->resolve(
      std::string(reinterpret_cast<const char*>(q.qname.data), q.qname.length), q.qtype, q.qclass,
      [this, p](const resolver::Outcome& o) {
        upstream_.store(forwarder_ ? forwarder_->upstreamQueries() + transport_->sent() : 0,
                        std::memory_order_relaxed);
        if (o.rcode == dns::rcode::kServFail) {
          finish(*p, nullptr,
                 o.ede == resolver::ede::kNetworkError ? ede::kNetworkError
                                                       : ede::kNoReachableAuthority);
          return;
        }
        if (dns::parseQuery(p->query.data(), p->query.size(), query_) != dns::ParseStatus::kOk) {
          release(*p);
          return;
        }
        outcomeMessage(query_, o, upstream_message_);
        resolver::ForwardResult r;
        r.status = resolver::ForwardStatus::kAnswer;
        r.message = upstream_message_.data();
        r.length = upstream_message_.size();
        finish(*p, &r, ede::kNone);
      });
}

void Recursor::release(const PendingQuery& p) {
  --outstanding_;
  auto it = per_client_.find(clientKey(p.peer));
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

void Recursor::finish(PendingQuery& p, const resolver::ForwardResult* upstream, uint16_t code) {
  release(p);
  dns::Query& q = query_;
  if (dns::parseQuery(p.query.data(), p.query.size(), q) != dns::ParseStatus::kOk) return;
  const size_t n = buildReply(p, q, upstream, code, reply_.get());
  if (n == 0) return;
  answered_.fetch_add(1, std::memory_order_relaxed);
  if (p.transport == Transport::kTcp) {
    if (p.deliver) p.deliver(reply_.get(), n);
    return;
  }
  iovec iov{reply_.get(), n};
  msghdr m{};
  m.msg_name = &p.client;
  m.msg_namelen = p.client_len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (p.control_len > 0) {
    m.msg_control = p.control;
    m.msg_controllen = p.control_len;
  }
  // The UDP thread's socket: a datagram send is atomic, so this thread and its sendmmsg do not
  // interleave. A failure loses the reply, as UDP allows.
  (void)::sendmsg(p.udp_fd, &m, MSG_DONTWAIT);
}

namespace {

// Where the records of an upstream reply end, before its OPT and TSIG (dns/response.h parses
// and checks it). Records after either are left out too: their compression pointers could lead
// into the octets that are not copied. False when the message is malformed.
struct UpstreamLayout {
  size_t question_end = 0;
  size_t records_end = 0;
  uint16_t counts[3] = {};
};

bool layoutOf(const uint8_t* m, size_t len, UpstreamLayout& out) {
  // Every record of a message of `len` octets fits these views; on the Recursor's one thread.
  static thread_local std::vector<dns::RecordView> storage(dns::kMaxRecords);
  dns::Response r;
  const auto views = std::span<dns::RecordView>(storage.data(), dns::maxRecordsFor(len));
  if (dns::parseResponse(m, len, views, r) != dns::ResponseError::kOk || !r.has_question) {
    return false;
  }
  out.question_end = dns::kHeaderSize + r.qname.length + 4;
  size_t cut = len;
  if (r.edns.present) cut = static_cast<size_t>(r.edns.options - m) - 11;  // OPT: root + 10
  if (r.has_tsig) cut = std::min<size_t>(cut, r.tsig.owner);
  out.records_end = out.question_end;
  const uint16_t counts[3] = {r.answer_count, r.authority_count, r.additional_count};
  size_t i = 0;
  for (int s = 0; s < 3; ++s) {
    for (uint16_t k = 0; k < counts[s]; ++k, ++i) {
      const dns::RecordView& v = r.records[i];
      if (v.owner >= cut) return true;
      out.records_end = static_cast<size_t>(v.rdata) + v.rdlength;
      ++out.counts[s];
    }
  }
  return true;
}

}  // namespace

size_t Recursor::buildReply(const PendingQuery& p, const dns::Query& q,
                            const resolver::ForwardResult* upstream, uint16_t ede_code,
                            uint8_t* out) {
  const bool tcp = p.transport == Transport::kTcp;
  // RFC 6891 §6.2.3/§6.2.5, as QueryHandler::handle: the client's size, at least 512, at most ours.
  size_t limit = dns::kClassicUdpSize;
  if (tcp) {
    limit = dns::kMaxMessageSize;
  } else if (q.has_edns) {
    limit = std::clamp<size_t>(q.udp_payload, dns::kClassicUdpSize, p.max_udp_payload);
  }
  const bool send_nsid = q.has_edns && q.nsid_requested && !p.nsid.empty();
  const bool send_cookie = q.has_edns && q.cookie_len != 0;
  size_t reserve = 0;
  if (q.has_edns) {
    reserve = 11 + ede::kOptionSize;
    if (send_nsid) reserve += 4 + p.nsid.size();
    if (send_cookie) reserve += 4 + 8 + dns::kServerCookieSize;
  }
  dns::ResponseWriter w;
  w.reset(out, limit, reserve);
  w.begin(q, true);
  w.setFlag(dns::flag::kRA, true);
  uint16_t rcode = rc::kServFail;
  UpstreamLayout lay;
  if (upstream != nullptr && !layoutOf(upstream->message, upstream->length, lay)) {
    upstream = nullptr;
    ede_code = ede::kNetworkError;  // a reply we cannot read is no answer
  }
  if (upstream != nullptr && lay.question_end != w.size()) {
    upstream = nullptr;  // the upstream's question is not the one we sent
    ede_code = ede::kNetworkError;
  }
  if (upstream != nullptr) {
    rcode = upstream->message[3] & 0x0F;
    ede_code = ede::kNone;
    // The records keep their compression pointers: the question before them is the client's, as
    // long as the upstream's (same name, letter case aside), so every offset is where it was.
    const size_t body = lay.records_end - lay.question_end;
    if (w.writeBytes(upstream->message + lay.question_end, body)) {
      for (int s = 0; s < 3; ++s) {
        for (uint16_t i = 0; i < lay.counts[s]; ++i) {
          w.countRecord(static_cast<dns::ResponseWriter::Section>(s));
        }
      }
    } else {
      w.setFlag(dns::flag::kTC, true);  // RFC 2181 §9: TC=1 and the question only, over UDP
    }
  }
  w.setRcode(rcode);
  w.finishSections();
  if (q.has_edns) {
    uint8_t cookie[8 + dns::kServerCookieSize];
    if (send_cookie) {
      std::memcpy(cookie, q.cookie, 8);
      dns::makeServerCookie(p.cookie_secret, q.cookie, p.peer.address, p.peer.ipv6 ? 16 : 4,
                            static_cast<uint32_t>(std::time(nullptr)), cookie + 8);
    }
    const size_t opt_at = w.size();
    const auto* nsid = send_nsid ? reinterpret_cast<const uint8_t*>(p.nsid.data()) : nullptr;
    if (w.writeOpt(p.max_udp_payload, rcode, q.dnssec_ok, nsid, p.nsid.size(), nullptr,
                   send_cookie ? cookie : nullptr, sizeof cookie) &&
        ede_code != ede::kNone) {
      (void)appendEde(w, opt_at, ede_code);
    }
  }
  return w.size();
}

}  // namespace meridian::server
