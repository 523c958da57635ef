// One dnstap message (dnstap.proto) and its protobuf encoding, written by hand: the handful of
// varint, fixed32 and length-delimited fields Meridian emits, into a caller's buffer. No
// generated code and no allocation here; the caller sizes the buffer with encodedSize().
//
// Called by dnstap::Sink on the thread that answered (or sent) the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace meridian::dnstap {

// Message.Type of the published schema. The authoritative path logs kAuthQuery/kAuthResponse;
// the resolver (resolver/) logs kClientQuery/kClientResponse for the queries it answers and
// kResolverQuery/kResolverResponse for its upstream traffic.
enum class MessageType : uint8_t {
  kAuthQuery = 1,
  kAuthResponse = 2,
  kResolverQuery = 3,
  kResolverResponse = 4,
  kClientQuery = 5,
  kClientResponse = 6,
};

// SocketProtocol of the published schema.
enum class Protocol : uint8_t { kUdp = 1, kTcp = 2 };

// An address and port; `known` false leaves both out of the message.
struct Endpoint {
  bool known = false;
  bool ipv6 = false;
  uint8_t address[16] = {};
  uint16_t port = 0;
};

// A point in time (CLOCK_REALTIME); sec 0 leaves it out.
struct Time {
  uint64_t sec = 0;
  uint32_t nsec = 0;
};

// What one dnstap message says. The pointers are not owned and must stay valid during encode().
struct Event {
  MessageType type = MessageType::kAuthQuery;
  Protocol protocol = Protocol::kUdp;
  Endpoint query_endpoint;     // the initiator (the client of AUTH_* and CLIENT_*)
  Endpoint response_endpoint;  // the responder (this server for AUTH_*)
  Time query_time;
  Time response_time;
  const uint8_t* query_message = nullptr;  // null: left out
  size_t query_len = 0;
  const uint8_t* response_message = nullptr;  // null: left out
  size_t response_len = 0;
  const uint8_t* query_zone = nullptr;  // wire-format name; null: left out
  size_t zone_len = 0;
};

// The octets encode() writes for this event, identity and version.
[[nodiscard]] size_t encodedSize(const Event& ev, std::string_view identity,
                                 std::string_view version);

// Writes the Dnstap message (type MESSAGE, identity, version, message) into out and returns its
// length, or 0 when it does not fit in cap.
size_t encode(const Event& ev, std::string_view identity, std::string_view version, uint8_t* out,
              size_t cap);

}  // namespace meridian::dnstap
