// Protobuf encoding of a dnstap message (dnstap.proto), by hand. Protobuf's wire format: each
// field is a key varint ((number << 3) | wire type) followed by a varint (type 0), four
// little-endian octets (type 5, fixed32) or a length varint and that many octets (type 2, bytes
// and nested messages). One function walks the fields twice, once counting (Counter) and once
// writing (Writer), so the nested Message's length prefix is known before it is written.
#include "dnstap/message.h"

namespace meridian::dnstap {

namespace {

constexpr uint8_t kVarint = 0, kLengthDelimited = 2, kFixed32 = 5;

// Dnstap fields.
constexpr uint32_t kIdentity = 1, kVersion = 2, kMessage = 14, kDnstapType = 15;
constexpr uint64_t kTypeMessage = 1;  // Dnstap.Type.MESSAGE
// Message fields.
constexpr uint32_t kType = 1, kSocketFamily = 2, kSocketProtocol = 3, kQueryAddress = 4,
                   kResponseAddress = 5, kQueryPort = 6, kResponsePort = 7, kQueryTimeSec = 8,
                   kQueryTimeNsec = 9, kQueryMessage = 10, kQueryZone = 11, kResponseTimeSec = 12,
                   kResponseTimeNsec = 13, kResponseMessage = 14;
constexpr uint64_t kInet = 1, kInet6 = 2;  // SocketFamily

class Counter {
 public:
  void byte(uint8_t) { ++n_; }
  void bytes(const uint8_t*, size_t len) { n_ += len; }
  [[nodiscard]] size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

class Writer {
 public:
  Writer(uint8_t* out, size_t cap) : p_(out), end_(out + cap) {}
  void byte(uint8_t b) {
    if (p_ < end_) *p_ = b;
    ++p_;
  }
  void bytes(const uint8_t* src, size_t len) {
    for (size_t i = 0; i < len; ++i) byte(src[i]);
  }

 private:
  uint8_t* p_;
  uint8_t* end_;
};

template <typename Out>
void varint(Out& o, uint64_t v) {
  while (v >= 0x80) {
    o.byte(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  o.byte(static_cast<uint8_t>(v));
}

template <typename Out>
void key(Out& o, uint32_t field, uint8_t wire_type) {
  varint(o, (uint64_t{field} << 3) | wire_type);
}

template <typename Out>
void varintField(Out& o, uint32_t field, uint64_t v) {
  key(o, field, kVarint);
  varint(o, v);
}

template <typename Out>
void fixed32Field(Out& o, uint32_t field, uint32_t v) {
  key(o, field, kFixed32);
  for (int i = 0; i < 4; ++i) o.byte(static_cast<uint8_t>(v >> (8 * i)));
}

template <typename Out>
void bytesField(Out& o, uint32_t field, const uint8_t* p, size_t len) {
  key(o, field, kLengthDelimited);
  varint(o, len);
  o.bytes(p, len);
}

template <typename Out>
void timeFields(Out& o, uint32_t sec_field, uint32_t nsec_field, const Time& t) {
  if (t.sec == 0) return;
  varintField(o, sec_field, t.sec);
  fixed32Field(o, nsec_field, t.nsec);
}

// The fields of Message.
template <typename Out>
void message(Out& o, const Event& ev) {
  varintField(o, kType, static_cast<uint64_t>(ev.type));
  const Endpoint& family_from = ev.query_endpoint.known ? ev.query_endpoint : ev.response_endpoint;
  if (family_from.known) varintField(o, kSocketFamily, family_from.ipv6 ? kInet6 : kInet);
  varintField(o, kSocketProtocol, static_cast<uint64_t>(ev.protocol));
  if (ev.query_endpoint.known) {
    bytesField(o, kQueryAddress, ev.query_endpoint.address, ev.query_endpoint.ipv6 ? 16 : 4);
  }
  if (ev.response_endpoint.known) {
    bytesField(o, kResponseAddress, ev.response_endpoint.address,
               ev.response_endpoint.ipv6 ? 16 : 4);
  }
  if (ev.query_endpoint.known) varintField(o, kQueryPort, ev.query_endpoint.port);
  if (ev.response_endpoint.known) varintField(o, kResponsePort, ev.response_endpoint.port);
  timeFields(o, kQueryTimeSec, kQueryTimeNsec, ev.query_time);
  if (ev.query_message != nullptr) bytesField(o, kQueryMessage, ev.query_message, ev.query_len);
  if (ev.query_zone != nullptr) bytesField(o, kQueryZone, ev.query_zone, ev.zone_len);
  timeFields(o, kResponseTimeSec, kResponseTimeNsec, ev.response_time);
  if (ev.response_message != nullptr) {
    bytesField(o, kResponseMessage, ev.response_message, ev.response_len);
  }
}

const uint8_t* octets(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// The fields of Dnstap, with the Message's length already counted.
template <typename Out>
void dnstap(Out& o, const Event& ev, std::string_view identity, std::string_view version,
            size_t message_len) {
  if (!identity.empty()) bytesField(o, kIdentity, octets(identity), identity.size());
  if (!version.empty()) bytesField(o, kVersion, octets(version), version.size());
  key(o, kMessage, kLengthDelimited);
  varint(o, message_len);
  message(o, ev);
  varintField(o, kDnstapType, kTypeMessage);
}

size_t messageSize(const Event& ev) {
  Counter c;
  message(c, ev);
  return c.size();
}

}  // namespace

size_t encodedSize(const Event& ev, std::string_view identity, std::string_view version) {
  Counter c;
  dnstap(c, ev, identity, version, messageSize(ev));
  return c.size();
}

size_t encode(const Event& ev, std::string_view identity, std::string_view version, uint8_t* out,
              size_t cap) {
  const size_t message_len = messageSize(ev);
  Counter c;
  dnstap(c, ev, identity, version, message_len);
  if (c.size() > cap) return 0;
  Writer w(out, cap);
  dnstap(w, ev, identity, version, message_len);
  return c.size();
}

}  // namespace meridian::dnstap
