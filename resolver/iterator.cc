#include "resolver/iterator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "dns/name.h"
#include "dns/response.h"
#include "dns/wire.h"

namespace meridian::resolver {

namespace t = dns::rrtype;

// ---- names ----------------------------------------------------------------------------------

std::string lowerName(const std::string& wire) {
  std::string out = wire;
  size_t i = 0;
  while (i < out.size() && out[i] != 0) {
    const size_t len = static_cast<uint8_t>(out[i]);
    for (size_t j = i + 1; j <= i + len && j < out.size(); ++j) {
      if (out[j] >= 'A' && out[j] <= 'Z') out[j] = static_cast<char>(out[j] - 'A' + 'a');
    }
    i += len + 1;
  }
  return out;
}

size_t labelCount(const std::string& wire) {
  size_t n = 0;
  size_t i = 0;
  while (i < wire.size() && wire[i] != 0) {
    i += static_cast<uint8_t>(wire[i]) + 1;
    ++n;
  }
  return n;
}

std::string suffixLabels(const std::string& name, size_t labels) {
  const size_t total = labelCount(name);
  size_t skip = total > labels ? total - labels : 0;
  size_t i = 0;
  while (skip-- > 0) i += static_cast<uint8_t>(name[i]) + 1;
  return name.substr(i);
}

bool inBailiwick(const std::string& name, const std::string& zone) {
  if (zone.size() > name.size()) return false;
  const size_t labels = labelCount(zone);
  return suffixLabels(name, labels) == zone && labelCount(name) >= labels;
}

std::string Endpoint::key() const {
  std::string k(ipv6 ? 16 : 4, '\0');
  std::memcpy(k.data(), address, k.size());
  k.push_back(static_cast<char>(port >> 8));
  k.push_back(static_cast<char>(port & 0xFF));
  return k;
}

std::string Endpoint::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(ipv6 ? AF_INET6 : AF_INET, address, buf, sizeof buf);
  std::string out = buf;
  if (port != 53) {
    out.push_back('#');
    out.append(std::to_string(port));
  }
  return out;
}

// ---- the task -------------------------------------------------------------------------------

struct Iterator::Task {
  std::string key;   // in-flight key (empty for a sub-resolution)
  std::string name;  // the name being resolved now (after CNAME/DNAME), lowercase wire
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  int depth = 0;
  std::shared_ptr<Task> root;  // the client question's task (its budget); null for that task
  int queries = 0;             // upstream queries, counted on the root task
  int cnames = 0;
  int referrals = 0;
  bool minimise = true;
  size_t asked_labels = 0;      // labels of the name asked at this cut (minimisation)
  std::string cut_zone;         // the zone cut asked now; empty: choose again
  std::set<std::string> tried;  // servers asked for the current (cut, name, labels)
  std::vector<Record> chain;
  bool done = false;
  SendStatus last_error = SendStatus::kOk;      // of the last failed send (the EDE on giving up)
  std::function<void(const Outcome&)> on_done;  // sub-resolutions report here

  Task& budget() { return root ? *root : *this; }
};

Iterator::Iterator(Transport& transport, Limits limits, std::vector<Endpoint> root_hints)
    : transport_(transport), limits_(limits) {
  ZoneCut root;
  root.zone = std::string(1, '\0');
  NsName hints;
  hints.addresses = std::move(root_hints);
  root.ns.push_back(std::move(hints));
  cuts_.emplace(root.zone, std::move(root));
}

Iterator::~Iterator() = default;

size_t Iterator::inFlight() const {
  return tasks_.size();
}

uint32_t Iterator::srttMs(const Endpoint& e) const {
  auto it = servers_.find(e.key());
  return it == servers_.end() ? 0 : it->second.srtt_ms;
}

void Iterator::resolve(const std::string& qname, uint16_t qtype, uint16_t qclass, Callback cb) {
  const std::string name = lowerName(qname);
  std::string key = name;
  key.push_back(static_cast<char>(qtype >> 8));
  key.push_back(static_cast<char>(qtype & 0xFF));
  key.push_back(static_cast<char>(qclass >> 8));
  key.push_back(static_cast<char>(qclass & 0xFF));
  auto& waiters = waiting_[key];
  waiters.push_back(std::move(cb));
  if (waiters.size() > 1) return;  // shares the resolution in flight
  auto task = std::make_shared<Task>();
  task->key = key;
  task->name = name;
  task->qtype = qtype;
  task->qclass = qclass;
  task->minimise = limits_.qname_minimisation;
  tasks_[key] = task;
  step(task);
}

Iterator::ZoneCut& Iterator::deepestCut(const std::string& name) {
  const uint64_t now = transport_.nowMs();
  for (size_t labels = labelCount(name); labels > 0; --labels) {
    auto it = cuts_.find(suffixLabels(name, labels));
    if (it != cuts_.end() && (it->second.expires_ms == 0 || it->second.expires_ms > now)) {
      return it->second;
    }
  }
  return cuts_.at(std::string(1, '\0'));
}

bool Iterator::pickServer(const std::shared_ptr<Task>& t, const ZoneCut& cut, Endpoint& out) {
  const uint64_t now = transport_.nowMs();
  bool found = false;
  uint64_t best = 0;
  for (const NsName& ns : cut.ns) {
    for (const Endpoint& e : ns.addresses) {
      const std::string k = e.key();
      if (t->tried.count(k) != 0) continue;
      uint64_t score = 0;
      auto it = servers_.find(k);
      if (it != servers_.end()) {
        auto lame = it->second.lame_for.find(cut.zone);
        if (lame != it->second.lame_for.end() && lame->second) continue;
        // Never measured: a middling guess with some spread, so unknown servers are tried
        // before a slow known one and load spreads between them.
        score = it->second.srtt_ms != 0 ? it->second.srtt_ms : 100 + transport_.randomId() % 64;
        // Backed off after a timeout: last resort.
        if (it->second.backoff_until_ms > now) score += 1'000'000;
      } else {
        score = 100 + transport_.randomId() % 64;
      }
      if (!found || score < best) {
        found = true;
        best = score;
        out = e;
      }
    }
  }
  return found;
}

void Iterator::step(const std::shared_ptr<Task>& t) {
  if (t->done) return;
  ZoneCut& cut = deepestCut(t->name);
  if (cut.zone != t->cut_zone) {
    t->cut_zone = cut.zone;
    t->tried.clear();
    t->asked_labels = labelCount(cut.zone) + 1;
  }
  Endpoint to;
  if (pickServer(t, cut, to)) {
    sendTo(t, cut, to, false);
    return;
  }
  // No address left to ask: look up the NS names given without glue, one at a time, as many as
  // the limit allows for this delegation.
  bool waiting = false;
  for (size_t i = 0; i < cut.ns.size(); ++i) {
    NsName& ns = cut.ns[i];
    if (!ns.addresses.empty() || ns.failed || ns.name.empty()) continue;
    if (ns.resolving) {
      waiting = true;
      continue;
    }
    if (cut.resolved_ns_names >= limits_.max_ns_names_resolved || t->depth >= limits_.max_depth) {
      continue;
    }
    // Its address would be looked up through the very zone it serves: no way in without glue.
    if (inBailiwick(ns.name, cut.zone)) {
      ns.failed = true;
      continue;
    }
    resolveNsName(t, cut, i);
    return;
  }
  if (waiting) {
    // Another question is already resolving this cut's NS name; ask again when it is done.
    pending_cut_waiters_[cut.zone].push_back(t);
    return;
  }
  fail(t, ede::kNoReachableAuthority,
       "no reachable authority for " +
           dns::toText(reinterpret_cast<const uint8_t*>(cut.zone.data())));
}

void Iterator::resolveNsName(const std::shared_ptr<Task>& t, ZoneCut& cut, size_t ns_index) {
  NsName& ns = cut.ns[ns_index];
  ns.resolving = true;
  ++cut.resolved_ns_names;
  auto sub = std::make_shared<Task>();
  sub->name = ns.name;
  sub->qtype = t::kA;
  sub->qclass = dns::rrclass::kIN;
  sub->depth = t->depth + 1;
  sub->root = t->root ? t->root : t;
  sub->minimise = limits_.qname_minimisation;
  const std::string zone = cut.zone;
  const std::string ns_name = ns.name;
  sub->on_done = [this, t, zone, ns_name](const Outcome& r) {
    auto it = cuts_.find(zone);
    if (it != cuts_.end()) {
      for (NsName& n : it->second.ns) {
        if (n.name != ns_name) continue;
        n.resolving = false;
        for (const Record& rec : r.answer) {
          if (rec.type != t::kA || rec.rdata.size() != 4) continue;
          Endpoint e;
          std::memcpy(e.address, rec.rdata.data(), 4);
          n.addresses.push_back(e);
        }
        n.failed = n.addresses.empty();
      }
    }
    step(t);
    auto w = pending_cut_waiters_.find(zone);
    if (w != pending_cut_waiters_.end()) {
      auto waiters = std::move(w->second);
      pending_cut_waiters_.erase(w);
      for (auto& other : waiters) step(other);
    }
  };
  step(sub);
}

namespace {

void appendU16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x & 0xFF));
}

// A non-recursive query (RD=0) for name/type/class, with an OPT record unless edns is false.
std::vector<uint8_t> buildQuery(uint16_t id, const std::string& name, uint16_t type,
                                uint16_t qclass, bool edns, uint16_t udp_size) {
  std::vector<uint8_t> q;
  q.reserve(dns::kHeaderSize + name.size() + 4 + 11);
  appendU16(q, id);
  appendU16(q, 0);  // QR=0, OPCODE=QUERY, RD=0
  appendU16(q, 1);
  appendU16(q, 0);
  appendU16(q, 0);
  appendU16(q, edns ? 1 : 0);
  q.insert(q.end(), name.begin(), name.end());
  appendU16(q, type);
  appendU16(q, qclass);
  if (edns) {
    q.push_back(0);  // root owner
    appendU16(q, t::kOPT);
    appendU16(q, udp_size);
    appendU16(q, 0);  // extended RCODE, version 0
    appendU16(q, 0);  // flags (DO when validation comes)
    appendU16(q, 0);  // no options
  }
  return q;
}

struct Parsed {
  std::vector<dns::RecordView> storage;
  dns::Response msg;
};

std::string ownerOf(const dns::Response& msg, const dns::RecordView& r) {
  dns::NameBuf n;
  dns::ownerName(msg, r, n);
  return std::string(reinterpret_cast<const char*>(n.data), n.length);
}

Record toRecord(const dns::Response& msg, const dns::RecordView& r) {
  Record out;
  out.owner = ownerOf(msg, r);
  out.type = r.type;
  out.rclass = r.rclass;
  out.ttl = r.ttl & 0x80000000u ? 0 : r.ttl;  // RFC 2181 §8
  std::string rdata(r.rdlength + dns::kMaxRdataExpansion, '\0');
  size_t len = 0;
  if (dns::expandRdata(msg, r, reinterpret_cast<uint8_t*>(rdata.data()), rdata.size(), &len)) {
    rdata.resize(len);
  } else {
    rdata.clear();
  }
  out.rdata = std::move(rdata);
  return out;
}

// The name in an NS/CNAME/DNAME RDATA (already expanded by toRecord), lowercased.
std::string rdataName(const Record& r) {
  return lowerName(r.rdata);
}

}  // namespace

void Iterator::sendTo(const std::shared_ptr<Task>& t, const ZoneCut& cut, const Endpoint& to,
                      bool tcp) {
  Task& budget = t->budget();
  if (budget.queries >= limits_.max_upstream_queries) {
    fail(t, ede::kOther, "upstream query limit reached");
    return;
  }
  ++budget.queries;
  const size_t labels = labelCount(t->name);
  const bool minimised = t->minimise && t->asked_labels < labels;
  std::string asked = minimised ? suffixLabels(t->name, t->asked_labels) : t->name;
  const uint16_t asked_type = minimised ? t::kA : t->qtype;  // RFC 9156 §2.3
  const uint16_t id = transport_.randomId();
  Server& s = servers_[to.key()];
  t->tried.insert(to.key());
  std::vector<uint8_t> q =
      buildQuery(id, asked, asked_type, t->qclass, !s.no_edns, limits_.edns_udp_size);
  const uint64_t sent = transport_.nowMs();
  const std::string zone = cut.zone;
  transport_.send(to, std::move(q), tcp, limits_.timeout_ms,
                  [this, t, zone, to, tcp, id, sent, asked, asked_type](
                      SendStatus status, const uint8_t* data, size_t size) {
                    onReply(t, zone, to, tcp, id, sent, status, data, size, asked, asked_type);
                  });
}

void Iterator::onReply(const std::shared_ptr<Task>& t, const std::string& zone,
                       const Endpoint& from, bool tcp, uint16_t id, uint64_t sent_ms,
                       SendStatus status, const uint8_t* data, size_t size,
                       const std::string& asked, uint16_t asked_type) {
  if (t->done) return;
  Server& s = servers_[from.key()];
  const uint64_t now = transport_.nowMs();
  if (status != SendStatus::kOk) {
    // RFC 1035 §7.2: try the next server; this one is backed off (SRTT doubled, capped).
    s.srtt_ms = std::min<uint32_t>(std::max<uint32_t>(s.srtt_ms * 2, limits_.timeout_ms), 12000);
    s.backoff_until_ms = now + s.srtt_ms;
    t->last_error = status;
    step(t);
    return;
  }
  const uint32_t rtt = static_cast<uint32_t>(std::max<uint64_t>(now - sent_ms, 1));
  s.srtt_ms = s.srtt_ms == 0 ? rtt : (7 * s.srtt_ms + rtt) / 8;
  s.backoff_until_ms = 0;

  Parsed p;
  p.storage.resize(dns::maxRecordsFor(size));
  if (dns::parseResponse(data, size, p.storage, p.msg) != dns::ResponseError::kOk) {
    step(t);  // FORMERR from our side: another server
    return;
  }
  const dns::Response& msg = p.msg;
  if (dns::matchQuestion(msg, id, reinterpret_cast<const uint8_t*>(asked.data()), asked_type,
                         t->qclass) != dns::QuestionMatch::kMatch) {
    step(t);  // RFC 5452 §9.1: not an answer to what we asked; never believed
    return;
  }
  if (msg.flag(dns::flag::kTC) && !tcp) {
    // RFC 7766 §5: the same question again over TCP, to the same server.
    Task& budget = t->budget();
    if (budget.queries >= limits_.max_upstream_queries) {
      fail(t, ede::kOther, "upstream query limit reached");
      return;
    }
    ZoneCut& cut = deepestCut(t->name);
    t->tried.erase(from.key());
    sendTo(t, cut, from, true);
    return;
  }
  const uint16_t rc = msg.rcode();
  if ((rc == dns::rcode::kFormErr || rc == dns::rcode::kNotImp) && !s.no_edns) {
    s.no_edns = true;  // RFC 6891 §7: it does not do EDNS; ask it again without
    ZoneCut& cut = deepestCut(t->name);
    t->tried.erase(from.key());
    sendTo(t, cut, from, tcp);
    return;
  }
  if (rc != dns::rcode::kNoError && rc != dns::rcode::kNXDomain) {
    s.lame_for[zone] = true;  // SERVFAIL, REFUSED, NOTAUTH...: lame for this zone
    step(t);
    return;
  }
  process(t, zone, from, msg, asked, asked_type);
}

void Iterator::process(const std::shared_ptr<Task>& t, const std::string& zone,
                       const Endpoint& from, const dns::Response& msg, const std::string& asked,
                       uint16_t asked_type) {
  const bool minimised = asked != t->name;
  const bool aa = msg.flag(dns::flag::kAA);
  const uint16_t rc = msg.rcode();

  // The answer section, as records we may keep: owners in the bailiwick of the zone we asked.
  std::vector<Record> answers;
  for (const auto& r : msg.section(dns::Section::kAnswer)) {
    if (r.rclass != t->qclass) continue;
    Record rec = toRecord(msg, r);
    if (rec.rdata.empty() && r.rdlength != 0) continue;
    if (!inBailiwick(lowerName(rec.owner), zone)) continue;  // out of bailiwick: never kept
    answers.push_back(std::move(rec));
  }

  // Follow the chain inside this answer from the name asked.
  std::string cur = asked;
  std::vector<Record> chain;
  std::vector<Record> final_set;
  for (int links = 0; links <= limits_.max_cname_chain; ++links) {
    for (const Record& r : answers) {
      if (lowerName(r.owner) == cur && r.type == asked_type) final_set.push_back(r);
    }
    if (!final_set.empty() || asked_type == t::kCNAME) break;
    // A DNAME above the name first (RFC 6672 §3.2: the CNAME a server synthesised from it is
    // replaced by ours), then a CNAME at the name.
    const Record* dname = nullptr;
    for (const Record& r : answers) {
      const std::string owner = lowerName(r.owner);
      if (r.type == t::kDNAME && owner != cur && inBailiwick(cur, owner)) dname = &r;
    }
    const Record* cname = nullptr;
    if (dname == nullptr) {
      for (const Record& r : answers) {
        if (lowerName(r.owner) == cur && r.type == t::kCNAME) cname = &r;
      }
    }
    if (cname != nullptr) {
      chain.push_back(*cname);
      cur = rdataName(*cname);
    } else if (dname != nullptr) {
      // RFC 6672 §2.2: replace the owner's labels at the end of cur with the target.
      const std::string owner = lowerName(dname->owner);
      const std::string target = rdataName(*dname);
      std::string synth = cur.substr(0, cur.size() - owner.size()) + target;
      if (synth.size() > dns::kMaxNameLength) {
        fail(t, ede::kOther, "DNAME substitution makes a name too long");  // RFC 6672 YXDOMAIN
        return;
      }
      chain.push_back(*dname);
      Record c;
      c.owner = cur;
      c.type = t::kCNAME;
      c.rclass = t->qclass;
      c.ttl = dname->ttl;
      c.rdata = synth;
      chain.push_back(std::move(c));
      cur = synth;
    } else {
      break;
    }
  }

  if (rc == dns::rcode::kNXDomain) {
    if (minimised) {
      // RFC 9156 §2.3 relaxed: a server that says NXDOMAIN for an empty non-terminal is broken;
      // ask the full name instead of believing it.
      t->minimise = false;
      t->tried.clear();
      step(t);
      return;
    }
    if (!aa && chain.empty()) {
      servers_[from.key()].lame_for[zone] = true;
      step(t);
      return;
    }
    Outcome r;
    r.rcode = dns::rcode::kNXDomain;
    r.answer = t->chain;
    r.answer.insert(r.answer.end(), chain.begin(), chain.end());
    r.authority = soaOf(msg, zone);
    finish(t, std::move(r));
    return;
  }

  if (!chain.empty() || !final_set.empty()) {
    if (minimised) {
      // Data at the shorter name: no zone cut there. A CNAME there: relaxed, ask the full name.
      if (!chain.empty())
        t->minimise = false;
      else
        ++t->asked_labels;
      t->tried.clear();
      step(t);
      return;
    }
    for (const Record& r : chain) {
      if (r.type == t::kCNAME) ++t->cnames;
    }
    if (t->cnames > limits_.max_cname_chain) {
      fail(t, ede::kOther, "CNAME chain longer than max_cname_chain");
      return;
    }
    t->chain.insert(t->chain.end(), chain.begin(), chain.end());
    if (!final_set.empty()) {
      Outcome r;
      r.rcode = dns::rcode::kNoError;
      r.answer = t->chain;
      r.answer.insert(r.answer.end(), final_set.begin(), final_set.end());
      finish(t, std::move(r));
      return;
    }
    // The chain leaves this answer: go on resolving its target, from its own zone cut.
    for (const Record& r : t->chain) {
      if (lowerName(r.owner) == cur) {
        fail(t, ede::kOther, "CNAME loop");
        return;
      }
    }
    t->name = cur;
    t->minimise = limits_.qname_minimisation;
    t->cut_zone.clear();
    step(t);
    return;
  }

  // No answer: a referral to a zone below the one we asked?
  std::string child;
  std::vector<std::string> ns_names;
  uint32_t ns_ttl = 0;
  for (const auto& r : msg.section(dns::Section::kAuthority)) {
    if (r.type != t::kNS || r.rclass != t->qclass) continue;
    Record rec = toRecord(msg, r);
    const std::string owner = lowerName(rec.owner);
    // RFC 1034 §4.3.2 / bailiwick: strictly below the zone asked, and above (or at) the name.
    if (owner == zone || !inBailiwick(owner, zone) || !inBailiwick(asked, owner)) continue;
    if (!child.empty() && owner != child) continue;
    child = owner;
    ns_names.push_back(rdataName(rec));
    ns_ttl = ns_names.size() == 1 ? rec.ttl : std::min(ns_ttl, rec.ttl);
  }
  if (!child.empty() && !aa) {
    if (++t->referrals > limits_.max_referrals) {
      fail(t, ede::kOther, "referral limit reached");
      return;
    }
    ZoneCut cut;
    cut.zone = child;
    cut.expires_ms =
        transport_.nowMs() + static_cast<uint64_t>(std::max<uint32_t>(ns_ttl, 1)) * 1000;
    for (const std::string& n : ns_names) {
      NsName ns;
      ns.name = n;
      // Glue: addresses for the NS names, only when the name is in the bailiwick of the zone
      // that gave the referral (anything else could be a poisoning attempt).
      if (inBailiwick(n, zone)) {
        for (const auto& a : msg.section(dns::Section::kAdditional)) {
          if (a.type != t::kA && a.type != t::kAAAA) continue;
          if (lowerName(ownerOf(msg, a)) != n) continue;
          if (a.type == t::kA && a.rdlength == 4) {
            Endpoint e;
            std::memcpy(e.address, msg.rdata(a), 4);
            ns.addresses.push_back(e);
          }
          // AAAA glue is kept for when the transport speaks IPv6 (not yet): skipped.
        }
      }
      cut.ns.push_back(std::move(ns));
    }
    cuts_[child] = std::move(cut);
    t->cut_zone.clear();
    step(t);
    return;
  }

  // NODATA: NOERROR, nothing for the name, from an authoritative server.
  if (aa || !soaOf(msg, zone).empty()) {
    if (minimised) {
      ++t->asked_labels;  // an empty non-terminal (or no A there): one label more
      t->tried.clear();
      step(t);
      return;
    }
    Outcome r;
    r.rcode = dns::rcode::kNoError;
    r.answer = t->chain;
    r.authority = soaOf(msg, zone);
    finish(t, std::move(r));
    return;
  }
  // Not authoritative, no referral down: lame (or an upward referral). Next server.
  servers_[from.key()].lame_for[zone] = true;
  step(t);
}

std::vector<Record> Iterator::soaOf(const dns::Response& msg, const std::string& zone) {
  std::vector<Record> out;
  for (const auto& r : msg.section(dns::Section::kAuthority)) {
    if (r.type != t::kSOA) continue;
    Record rec = toRecord(msg, r);
    if (!inBailiwick(lowerName(rec.owner), zone)) continue;
    out.push_back(std::move(rec));
    break;
  }
  return out;
}

void Iterator::finish(const std::shared_ptr<Task>& t, Outcome r) {
  if (t->done) return;
  t->done = true;
  r.upstream_queries = t->budget().queries;
  if (t->on_done) {
    auto cb = std::move(t->on_done);
    cb(r);
    return;
  }
  auto it = waiting_.find(t->key);
  std::vector<Callback> cbs;
  if (it != waiting_.end()) {
    cbs = std::move(it->second);
    waiting_.erase(it);
  }
  tasks_.erase(t->key);
  for (auto& cb : cbs) cb(r);
}

void Iterator::fail(const std::shared_ptr<Task>& t, uint16_t ede_code, std::string why) {
  Outcome r;
  r.rcode = dns::rcode::kServFail;
  r.ede = ede_code;
  if (ede_code == ede::kNoReachableAuthority && t->last_error == SendStatus::kNetworkError) {
    r.ede = ede::kNetworkError;
  }
  r.ede_text = std::move(why);
  finish(t, std::move(r));
}

}  // namespace meridian::resolver
