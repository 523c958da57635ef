// DNS wire-format constants and byte-order helpers (RFC 1035 §4). Header-only; used everywhere.
// Integers are read and written byte by byte, never by casting structs onto buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::dns {

// RFC 1035 §2.3.4: names are at most 255 octets in wire form, labels at most 63.
inline constexpr size_t kMaxNameLength = 255;
inline constexpr size_t kMaxLabelLength = 63;
inline constexpr size_t kMaxLabels = 128;
inline constexpr size_t kHeaderSize = 12;
// RFC 1035 §4.2.1: UDP messages without EDNS are limited to 512 octets.
inline constexpr size_t kClassicUdpSize = 512;
// RFC 1035 §4.2.2: the TCP length prefix is 16 bits.
inline constexpr size_t kMaxMessageSize = 65535;

namespace rrtype {
inline constexpr uint16_t kA = 1, kNS = 2, kMD = 3, kMF = 4, kCNAME = 5, kSOA = 6, kMB = 7, kMG = 8,
                          kMR = 9, kNULL = 10, kWKS = 11, kPTR = 12, kHINFO = 13, kMINFO = 14,
                          kMX = 15, kTXT = 16, kRP = 17, kAFSDB = 18, kAAAA = 28, kSRV = 33,
                          kNAPTR = 35, kDNAME = 39, kOPT = 41, kDS = 43, kRRSIG = 46, kNSEC = 47,
                          kDNSKEY = 48, kNSEC3 = 50, kTKEY = 249, kTSIG = 250, kIXFR = 251,
                          kAXFR = 252, kMAILB = 253, kMAILA = 254, kANY = 255;
}  // namespace rrtype

namespace rrclass {
inline constexpr uint16_t kIN = 1, kCH = 3, kNONE = 254, kANY = 255;
}

namespace opcode {
inline constexpr uint8_t kQuery = 0, kIQuery = 1, kStatus = 2, kNotify = 4, kUpdate = 5;
}

namespace rcode {
inline constexpr uint16_t kNoError = 0, kFormErr = 1, kServFail = 2, kNXDomain = 3, kNotImp = 4,
                          kRefused = 5, kYXDomain = 6, kNotAuth = 9, kBadVers = 16, kBadSig = 16,
                          kBadKey = 17, kBadTime = 18, kBadCookie = 23;
}

namespace edns_option {
inline constexpr uint16_t kNSID = 3, kClientSubnet = 8, kCookie = 10, kPadding = 12,
                          kExtendedError = 15;  // RFC 8914
}

// Header flag bits in the second 16-bit word.
namespace flag {
inline constexpr uint16_t kQR = 0x8000, kAA = 0x0400, kTC = 0x0200, kRD = 0x0100, kRA = 0x0080,
                          kZ = 0x0040, kAD = 0x0020, kCD = 0x0010;
}

[[nodiscard]] inline uint16_t readU16(const uint8_t* p) {
  return static_cast<uint16_t>((static_cast<uint16_t>(p[0]) << 8) | p[1]);
}
[[nodiscard]] inline uint32_t readU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void writeU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void writeU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

[[nodiscard]] inline uint8_t asciiLower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c;
}

// RFC 3597 §4: only these RFC 1035-era types may have their embedded names compressed.
[[nodiscard]] inline bool hasCompressibleNames(uint16_t type) {
  switch (type) {
    case rrtype::kNS:
    case rrtype::kMD:
    case rrtype::kMF:
    case rrtype::kCNAME:
    case rrtype::kSOA:
    case rrtype::kMB:
    case rrtype::kMG:
    case rrtype::kMR:
    case rrtype::kPTR:
    case rrtype::kMINFO:
    case rrtype::kMX:
      return true;
    default:
      return false;
  }
}

}  // namespace meridian::dns
