// Journal: records encoded and decoded, the file scanned (CRC, serial chain, torn tail), appends
// with fdatasync, compaction and reset through writeFileAtomic (writer.h). Control thread only.
#include "zones/journal.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/file.h"
#include "zones/serial.h"
#include "zones/writer.h"

namespace meridian::zones {
namespace {

constexpr char kMagic[8] = {'M', 'R', 'D', 'N', 'J', 'R', 'N', '1'};
// kind, old serial, serial, time, digest, file hash: what every record's payload starts with.
constexpr size_t kPrefix = 1 + 4 + 4 + 8 + 8 + 32;
constexpr size_t kFrame = 8;  // length, CRC32C
// No record we write comes near this (a snapshot of a 4 GiB arena would); a length above it is
// a torn or foreign write, not an allocation to attempt.
constexpr uint64_t kMaxPayload = 1ull << 33;

// CRC32C lookup table (reflected polynomial 0x82F63B78), built at compile time.
struct CrcTable {
  uint32_t t[256];
  constexpr CrcTable() : t{} {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};
constexpr CrcTable kCrc;

void putU8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void putU16(std::string& out, uint16_t v) {
  putU8(out, static_cast<uint8_t>(v >> 8));
  putU8(out, static_cast<uint8_t>(v));
}
void putU32(std::string& out, uint32_t v) {
  putU16(out, static_cast<uint16_t>(v >> 16));
  putU16(out, static_cast<uint16_t>(v));
}
void putU64(std::string& out, uint64_t v) {
  putU32(out, static_cast<uint32_t>(v >> 32));
  putU32(out, static_cast<uint32_t>(v));
}
void putBytes(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}

// Reads a payload front to back; every read checks the length left.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  [[nodiscard]] bool has(size_t k) const { return n_ - at_ >= k; }
  [[nodiscard]] bool done() const { return at_ == n_; }
  bool u8(uint8_t& v) {
    return take(1, [&](const uint8_t* q) { v = q[0]; });
  }
  bool u16(uint16_t& v) {
    return take(2, [&](const uint8_t* q) { v = dns::readU16(q); });
  }
  bool u32(uint32_t& v) {
    return take(4, [&](const uint8_t* q) { v = dns::readU32(q); });
  }
  bool u64(uint64_t& v) {
    uint32_t hi = 0, lo = 0;
    if (!u32(hi) || !u32(lo)) return false;
    v = static_cast<uint64_t>(hi) << 32 | lo;
    return true;
  }
  const uint8_t* bytes(size_t k) {
    if (!has(k)) return nullptr;
    const uint8_t* q = p_ + at_;
    at_ += k;
    return q;
  }

 private:
  template <typename F>
  bool take(size_t k, F&& f) {
    const uint8_t* q = bytes(k);
    if (q == nullptr) return false;
    f(q);
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
};

std::string header(const dns::NameBuf& apex) {
  std::string h(kMagic, sizeof kMagic);
  putU8(h, apex.length);
  putBytes(h, apex.data, apex.length);
  putU32(h, crc32c(h.data(), h.size()));
  return h;
}

// RRset list: count, then per RRset owner length, owner (as written), type, TTL, record count,
// packed RDATA length and the packed RDATA (2-octet length, octets; repeated).
void putRRsets(std::string& out, const ZoneContent& c) {
  putU32(out, static_cast<uint32_t>(c.rrsetCount()));
  for (size_t i = 0; i < c.rrsetCount(); ++i) {
    const auto rs = c.rrset(i);
    putU8(out, static_cast<uint8_t>(rs.ownerLength()));
    putBytes(out, rs.owner(), rs.ownerLength());
    putU16(out, rs.type());
    putU32(out, rs.ttl());
    putU16(out, static_cast<uint16_t>(rs.size()));
    const auto packed = rs.packedRdata();
    putU32(out, static_cast<uint32_t>(packed.size()));
    putBytes(out, packed.data(), packed.size());
  }
}

// A well-formed uncompressed wire name of exactly `n` octets.
bool wellFormedName(const uint8_t* p, size_t n) {
  size_t at = 0;
  while (at < n) {
    if (p[at] == 0) return at + 1 == n;
    if (p[at] > dns::kMaxLabelLength) return false;
    at += 1 + p[at];
  }
  return false;
}

Result<ZoneContent> getRRsets(Reader& in, const dns::NameBuf& apex) {
  const Error bad{"an RRset list that does not parse"};
  uint32_t count = 0;
  if (!in.u32(count)) return bad;
  ZoneContent::Builder b(apex);
  for (uint32_t k = 0; k < count; ++k) {
    uint8_t owner_length = 0;
    uint16_t type = 0, records = 0;
    uint32_t ttl = 0, packed_length = 0;
    if (!in.u8(owner_length)) return bad;
    const uint8_t* owner = in.bytes(owner_length);
    if (owner == nullptr || !wellFormedName(owner, owner_length)) return bad;
    if (!in.u16(type) || !in.u32(ttl) || !in.u16(records) || !in.u32(packed_length)) return bad;
    const uint8_t* packed = in.bytes(packed_length);
    if (packed == nullptr) return bad;
    size_t at = 0, seen = 0;
    while (at < packed_length) {
      if (packed_length - at < 2) return bad;
      const size_t rdlen = dns::readU16(packed + at);
      if (packed_length - at - 2 < rdlen) return bad;
      b.add(owner, type, ttl, packed + at + 2, rdlen);
      at += 2 + rdlen;
      ++seen;
    }
    if (seen != records || records == 0) return bad;
  }
  return b.finish();
}

std::string record(JournalEntry::Kind kind, uint32_t old_serial, uint32_t serial, int64_t time,
                   uint64_t digest, const FileHash& hash, const ZoneContent* first,
                   const ZoneContent* second) {
  std::string out(kFrame, '\0');
  putU8(out, static_cast<uint8_t>(kind));
  putU32(out, old_serial);
  putU32(out, serial);
  putU64(out, static_cast<uint64_t>(time));
  putU64(out, digest);
  putBytes(out, hash.data(), hash.size());
  if (first != nullptr) putRRsets(out, *first);
  if (second != nullptr) putRRsets(out, *second);
  const size_t length = out.size() - kFrame;
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  dns::writeU32(p, static_cast<uint32_t>(length));
  // The CRC covers the length too: a torn length field cannot pass for another record's.
  const uint32_t crc = crc32c(p + kFrame, length, crc32c(p, 4));
  dns::writeU32(p + 4, crc);
  return out;
}

// pread() or pwrite() until all `n` octets are done, retrying after EINTR; false on an error or
// at the end of the file.
template <typename Octets, typename Op>
bool positionedAll(Op op, int fd, Octets* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t k = op(fd, p, n, static_cast<off_t>(off));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
    off += static_cast<uint64_t>(k);
  }
  return true;
}

bool preadAll(int fd, void* buf, size_t n, uint64_t off) {
  return positionedAll(::pread, fd, static_cast<char*>(buf), n, off);
}

bool pwriteAll(int fd, const void* buf, size_t n, uint64_t off) {
  return positionedAll(::pwrite, fd, static_cast<const char*>(buf), n, off);
}

std::string serialText(uint32_t s) {
  return std::to_string(s);
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kCrc.t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

FileHash hashBytes(std::string_view data) {
  FileHash h{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

Result<FileHash> hashFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{core::errnoText("cannot open", path)};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Error e{core::errnoText("cannot read", path)};
      ::close(fd);
      return e;
    }
    if (r == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(r));
  }
  ::close(fd);
  FileHash h{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), h.data(), &len);
  return h;
}

std::string shortHex(const FileHash& h) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < 6; ++i) {
    s.push_back(kHex[h[i] >> 4]);
    s.push_back(kHex[h[i] & 15]);
  }
  return s;
}

// Journal

Journal::Journal(std::string path, const dns::NameBuf& apex, JournalLimits limits)
    : path_(std::move(path)), apex_(apex), limits_(limits) {
  dns::lowercase(apex_);
}

Journal::Journal(Journal&& o) noexcept
    : path_(std::move(o.path_)),
      apex_(o.apex_),
      limits_(o.limits_),
      fd_(o.fd_),
      size_(o.size_),
      entries_(std::move(o.entries_)),
      diff_count_(o.diff_count_),
      diff_bytes_(o.diff_bytes_) {
  o.fd_ = -1;
}

Journal& Journal::operator=(Journal&& o) noexcept {
  if (this != &o) {
    closeFd();
    path_ = std::move(o.path_);
    apex_ = o.apex_;
    limits_ = o.limits_;
    fd_ = o.fd_;
    size_ = o.size_;
    entries_ = std::move(o.entries_);
    diff_count_ = o.diff_count_;
    diff_bytes_ = o.diff_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

Journal::~Journal() {
  closeFd();
}

void Journal::closeFd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<void> Journal::reopen() {
  closeFd();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return Error{core::errnoText("cannot open journal", path_)};
  return {};
}

Result<Journal> Journal::open(const std::string& path, const dns::NameBuf& apex,
                              JournalLimits limits, std::vector<std::string>& warnings) {
  Journal j(path, apex, limits);
  j.fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (j.fd_ < 0) {
    if (errno == ENOENT) return j;
    return Error{core::errnoText("cannot open journal", path)};
  }
  struct stat st {};
  if (::fstat(j.fd_, &st) != 0) return Error{core::errnoText("cannot stat journal", path)};
  const auto file_size = static_cast<uint64_t>(st.st_size);
  const std::string want = header(j.apex_);
  std::string have(want.size(), '\0');
  if (file_size < want.size() || !preadAll(j.fd_, have.data(), have.size(), 0) ||
      std::memcmp(have.data(), kMagic, sizeof kMagic) != 0) {
    return Error{path + ": not a Meridian zone journal"};
  }
  if (have != want) {
    return Error{path + ": not the journal of zone " + dns::toText(j.apex_.data)};
  }
  uint64_t at = want.size();
  std::string torn;  // why the scan stopped early, if it did
  std::vector<uint8_t> payload;
  while (at < file_size) {
    uint8_t frame[kFrame];
    if (file_size - at < kFrame || !preadAll(j.fd_, frame, kFrame, at)) {
      torn = "an incomplete record header";
      break;
    }
    const uint32_t length = dns::readU32(frame);
    if (length < kPrefix || length > kMaxPayload || length > file_size - at - kFrame) {
      torn = "a record longer than the file";
      break;
    }
    payload.resize(length);
    if (!preadAll(j.fd_, payload.data(), length, at + kFrame)) {
      return Error{core::errnoText("cannot read journal", path)};
    }
    if (crc32c(payload.data(), length, crc32c(frame, 4)) != dns::readU32(frame + 4)) {
      torn = "a record whose CRC does not match";
      break;
    }
    Reader in(payload.data(), payload.size());
    JournalEntry e;
    uint8_t kind = 0;
    uint64_t time = 0;
    (void)in.u8(kind);
    (void)in.u32(e.old_serial);
    (void)in.u32(e.serial);
    (void)in.u64(time);
    (void)in.u64(e.digest);
    std::memcpy(e.file_hash.data(), in.bytes(e.file_hash.size()), e.file_hash.size());
    e.time = static_cast<int64_t>(time);
    e.offset = at;
    e.length = length;
    const std::string where = path + " at offset " + std::to_string(at) + ": ";
    if (kind != 1 && kind != 2) return Error{where + "unknown record kind " + std::to_string(kind)};
    e.kind = static_cast<JournalEntry::Kind>(kind);
    if (!j.entries_.empty()) {
      const uint32_t prev = j.entries_.back().serial;
      const bool chained = e.kind == JournalEntry::Kind::kSnapshot
                               ? e.old_serial == prev && e.serial == prev
                               : e.old_serial == prev && serialNewer(e.serial, e.old_serial);
      if (!chained) {
        return Error{where + "serial " + serialText(e.old_serial) + " -> " + serialText(e.serial) +
                     " does not follow serial " + serialText(prev)};
      }
    }
    if (e.kind == JournalEntry::Kind::kDiff) {
      ++j.diff_count_;
      j.diff_bytes_ += kFrame + length;
    }
    j.entries_.push_back(e);
    at += kFrame + length;
  }
  if (!torn.empty()) {
    // Only the tail can be torn: records are appended one at a time and fdatasync'ed, and a
    // record is acknowledged only after that. What follows the last good record is dropped.
    warnings.push_back("journal " + path + ": " + std::to_string(file_size - at) +
                       " octets at offset " + std::to_string(at) + " (" + torn +
                       ") are a write cut short; removed");
    if (::ftruncate(j.fd_, static_cast<off_t>(at)) != 0 || ::fdatasync(j.fd_) != 0) {
      return Error{core::errnoText("cannot truncate journal", path)};
    }
  }
  j.size_ = at;
  if (!j.entries_.empty() && j.snapshots() == 0) {
    // Every file we write holds one (reset, compaction); appends only add diffs after it.
    return Error{path + ": no snapshot of the zone in the journal"};
  }
  if (j.entries_.empty()) {
    // A header alone: nothing to recover; reset() starts it again.
    j.closeFd();
    j.size_ = 0;
  }
  return j;
}

Result<std::vector<uint8_t>> Journal::readPayload(const JournalEntry& e) const {
  std::vector<uint8_t> p(e.length);
  if (fd_ < 0 || !preadAll(fd_, p.data(), p.size(), e.offset + kFrame)) {
    return Error{core::errnoText("cannot read journal", path_)};
  }
  return p;
}

Result<ZoneDiff> Journal::readDiff(const JournalEntry& e) const {
  auto payload = readPayload(e);
  if (!payload) return payload.error();
  Reader in(payload->data() + kPrefix, payload->size() - kPrefix);
  auto removed = getRRsets(in, apex_);
  auto added = removed ? getRRsets(in, apex_) : Result<ZoneContent>(removed.error());
  if (!added || !in.done()) {
    return Error{path_ + ": the change to serial " + serialText(e.serial) + " at offset " +
                 std::to_string(e.offset) + " does not parse"};
  }
  return ZoneDiff{e.old_serial, e.serial, std::move(*removed), std::move(*added)};
}

Result<void> Journal::reset(const ZoneContent& content, uint64_t digest, const FileHash& file_hash,
                            int64_t time) {
  const uint32_t serial = content.serial().value_or(0);
  const std::string head = header(apex_);
  const std::string snap = record(JournalEntry::Kind::kSnapshot, serial, serial, time, digest,
                                  file_hash, &content, nullptr);
  if (auto w = writeFileAtomic(path_, head + snap); !w) return w.error();
  if (auto r = reopen(); !r) return r;
  JournalEntry e{JournalEntry::Kind::kSnapshot,
                 serial,
                 serial,
                 time,
                 digest,
                 file_hash,
                 head.size(),
                 static_cast<uint32_t>(snap.size() - kFrame)};
  entries_.assign(1, e);
  size_ = head.size() + snap.size();
  diff_count_ = 0;
  diff_bytes_ = 0;
  return {};
}

Result<void> Journal::append(const ZoneDiff& d, uint64_t digest, const FileHash& file_hash,
                             int64_t time) {
  if (entries_.empty() || fd_ < 0) return Error{"journal " + path_ + " has not been started"};
  if (d.old_serial != serial() || !serialNewer(d.new_serial, d.old_serial)) {
    return Error{"journal " + path_ + ": a change from serial " + serialText(d.old_serial) +
                 " to " + serialText(d.new_serial) + " does not follow serial " +
                 serialText(serial())};
  }
  const std::string rec = record(JournalEntry::Kind::kDiff, d.old_serial, d.new_serial, time,
                                 digest, file_hash, &d.removed, &d.added);
  // After a failed write or fdatasync the state of the written octets is unknown: cut them off.
  auto undo = [&](const std::string& what) -> Result<void> {
    Error e{core::errnoText(what, path_)};
    (void)!::ftruncate(fd_, static_cast<off_t>(size_));
    return e;
  };
  if (!pwriteAll(fd_, rec.data(), rec.size(), size_)) return undo("cannot write journal");
  if (::fdatasync(fd_) != 0) return undo("cannot fdatasync journal");
  entries_.push_back(JournalEntry{JournalEntry::Kind::kDiff, d.old_serial, d.new_serial, time,
                                  digest, file_hash, size_,
                                  static_cast<uint32_t>(rec.size() - kFrame)});
  size_ += rec.size();
  ++diff_count_;
  diff_bytes_ += rec.size();
  return {};
}

Result<void> Journal::dropLast() {
  if (entries_.empty() || entries_.back().kind != JournalEntry::Kind::kDiff || fd_ < 0) {
    return Error{"journal " + path_ + ": no appended change to remove"};
  }
  const JournalEntry e = entries_.back();
  if (::ftruncate(fd_, static_cast<off_t>(e.offset)) != 0 || ::fdatasync(fd_) != 0) {
    return Error{core::errnoText("cannot truncate journal", path_)};
  }
  entries_.pop_back();
  size_ = e.offset;
  --diff_count_;
  diff_bytes_ -= kFrame + e.length;
  return {};
}

Result<bool> Journal::compactIfNeeded(const ZoneContent& latest, uint64_t digest, int64_t time) {
  if (entries_.empty() ||
      (diff_count_ <= limits_.max_entries && diff_bytes_ <= limits_.max_bytes)) {
    return false;
  }
  if (latest.serial().value_or(0) != serial()) {
    return Error{"journal " + path_ + ": compaction given the content at serial " +
                 serialText(latest.serial().value_or(0)) + ", not " + serialText(serial())};
  }
  // The newest diffs within half of each bound (the snapshots between them are dropped: the
  // serials still chain, a snapshot repeating the serial before it).
  size_t first = entries_.size();
  size_t kept = 0;
  uint64_t kept_bytes = 0;
  while (first > 0) {
    const JournalEntry& e = entries_[first - 1];
    if (e.kind == JournalEntry::Kind::kDiff) {
      if (kept + 1 > limits_.max_entries / 2 ||
          kept_bytes + kFrame + e.length > limits_.max_bytes / 2)
        break;
      ++kept;
      kept_bytes += kFrame + e.length;
    }
    --first;
  }
  std::string out = header(apex_);
  std::vector<JournalEntry> entries;
  for (size_t k = first; k < entries_.size(); ++k) {
    JournalEntry e = entries_[k];
    if (e.kind != JournalEntry::Kind::kDiff) continue;
    const size_t at = out.size();
    out.resize(at + kFrame + e.length);
    if (!preadAll(fd_, out.data() + at, kFrame + e.length, e.offset)) {
      return Error{core::errnoText("cannot read journal", path_)};
    }
    e.offset = at;
    entries.push_back(e);
  }
  const std::string snap = record(JournalEntry::Kind::kSnapshot, serial(), serial(), time, digest,
                                  last().file_hash, &latest, nullptr);
  entries.push_back(JournalEntry{JournalEntry::Kind::kSnapshot, serial(), serial(), time, digest,
                                 last().file_hash, out.size(),
                                 static_cast<uint32_t>(snap.size() - kFrame)});
  out += snap;
  if (auto w = writeFileAtomic(path_, out); !w) return w.error();
  entries_ = std::move(entries);
  size_ = out.size();
  diff_count_ = kept;
  diff_bytes_ = kept_bytes;
  // The old descriptor points at the replaced file (unlinked by the rename).
  if (auto r = reopen(); !r) return r.error();
  return true;
}

Result<ZoneContent> Journal::latest() const {
  if (entries_.empty()) return Error{"journal " + path_ + " is empty"};
  size_t s = entries_.size();
  while (s > 0 && entries_[s - 1].kind != JournalEntry::Kind::kSnapshot) --s;
  if (s == 0) return Error{path_ + ": no snapshot of the zone in the journal"};
  const JournalEntry& snap = entries_[s - 1];
  auto payload = readPayload(snap);
  if (!payload) return payload.error();
  Reader in(payload->data() + kPrefix, payload->size() - kPrefix);
  auto content = getRRsets(in, apex_);
  if (!content || !in.done()) {
    return Error{path_ + ": the snapshot at offset " + std::to_string(snap.offset) +
                 " does not parse"};
  }
  ZoneContent c = std::move(*content);
  if (c.serial().value_or(0) != snap.serial) {
    return Error{path_ + ": the snapshot at offset " + std::to_string(snap.offset) +
                 " is not at its recorded serial"};
  }
  return replay(std::move(c));
}

Result<ZoneContent> Journal::replay(ZoneContent base) const {
  if (entries_.empty()) return Error{"journal " + path_ + " is empty"};
  const uint32_t from = base.serial().value_or(0);
  if (from == serial()) return base;
  const std::optional<size_t> start = after(from);
  if (!start) {
    return Error{"journal " + path_ + " does not go back to serial " + serialText(from) +
                 " (it holds serials " + serialText(entries_.front().serial) + " to " +
                 serialText(serial()) + ")"};
  }
  for (size_t k = *start; k < entries_.size(); ++k) {
    const JournalEntry& e = entries_[k];
    if (e.kind != JournalEntry::Kind::kDiff) continue;
    auto d = readDiff(e);
    if (!d) return d.error();
    if (auto ok = apply(base, *d); !ok) {
      return Error{path_ + ": the change to serial " + serialText(e.serial) +
                   " does not apply: " + ok.error().message};
    }
  }
  return base;
}

Result<std::optional<std::vector<ZoneDiff>>> Journal::diffsSince(uint32_t from) const {
  std::optional<std::vector<ZoneDiff>> out;
  if (entries_.empty()) return out;
  // RFC 1995 §2: a copy at the same or a newer serial is up to date (answered with the SOA).
  if (from == serial() || serialNewer(from, serial())) {
    out.emplace();
    return out;
  }
  const std::optional<size_t> start = after(from);
  if (!start) return out;
  out.emplace();
  for (size_t k = *start; k < entries_.size(); ++k) {
    const JournalEntry& e = entries_[k];
    if (e.kind != JournalEntry::Kind::kDiff) continue;
    auto d = readDiff(e);
    if (!d) return d.error();
    out->push_back(std::move(*d));
  }
  return out;
}

std::optional<size_t> Journal::after(uint32_t from) const {
  for (size_t k = entries_.size(); k > 0; --k) {
    if (entries_[k - 1].serial == from) return k;
  }
  // The oldest diff kept by a compaction starts from a serial no record ends at.
  if (!entries_.empty() && entries_[0].old_serial == from) return 0;
  return std::nullopt;
}

size_t Journal::snapshots() const {
  size_t n = 0;
  for (const auto& e : entries_) n += e.kind == JournalEntry::Kind::kSnapshot ? 1 : 0;
  return n;
}

std::optional<size_t> Journal::findFileHash(const FileHash& h) const {
  for (size_t k = entries_.size(); k-- > 0;) {
    if (entries_[k].file_hash == h) return k;
  }
  return std::nullopt;
}

}  // namespace meridian::zones
