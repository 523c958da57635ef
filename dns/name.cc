#include "dns/name.h"

#include <cstring>

namespace meridian::dns {

NameStatus parseName(const uint8_t* packet, size_t size, size_t pos, NameBuf& out, size_t* end) {
  out.length = 0;
  out.label_count = 0;
  size_t out_len = 0;
  size_t cursor = pos;
  bool jumped = false;
  // Pointers must go strictly backwards (each jump lowers `limit`), so any loop is refused.
  size_t limit = pos;
  for (;;) {
    // A run of labels up to the root or a pointer is checked first, then copied in one go.
    const size_t run = cursor;
    const size_t run_out = out_len;
    uint8_t len;
    for (;;) {
      if (cursor >= size) return NameStatus::kTruncated;
      len = packet[cursor];
      if ((len & 0xC0) != 0 || len == 0) break;
      if (cursor + 1 + len > size) return NameStatus::kTruncated;
      if (out_len + 1 + len + 1 > kMaxNameLength) return NameStatus::kTooLong;
      out.label_offset[out.label_count++] = static_cast<uint8_t>(out_len);
      out_len += 1 + len;
      cursor += 1 + len;
    }
    std::memcpy(out.data + run_out, packet + run, out_len - run_out);
    if ((len & 0xC0) == 0xC0) {
      if (cursor + 1 >= size) return NameStatus::kTruncated;
      const size_t target = (static_cast<size_t>(len & 0x3F) << 8) | packet[cursor + 1];
      if (!jumped) {
        *end = cursor + 2;
        jumped = true;
      }
      if (target >= limit) return NameStatus::kPointerLoop;
      limit = target;
      cursor = target;
      continue;
    }
    if (len != 0) return NameStatus::kBadLabel;  // RFC 6891 §5: extended labels are gone
    if (out_len + 1 > kMaxNameLength) return NameStatus::kTooLong;
    out.data[out_len++] = 0;
    if (!jumped) *end = cursor + 1;
    out.length = static_cast<uint8_t>(out_len);
    return NameStatus::kOk;
  }
}

NameStatus skipName(const uint8_t* packet, size_t size, size_t pos, size_t* end) {
  size_t total = 0;
  size_t cursor = pos;
  for (;;) {
    if (cursor >= size) return NameStatus::kTruncated;
    const uint8_t len = packet[cursor];
    if ((len & 0xC0) == 0xC0) {
      if (cursor + 1 >= size) return NameStatus::kTruncated;
      const size_t target = (static_cast<size_t>(len & 0x3F) << 8) | packet[cursor + 1];
      // parseName's rule: before the start of the name, not only before the pointer (a pointer
      // into the name's own labels is refused by both, so what one accepts the other reads).
      if (target >= pos) return NameStatus::kPointerLoop;
      // Validate the pointed-to name too (it starts before `pos`, so this terminates).
      NameBuf scratch;
      size_t ignored;
      const NameStatus st = parseName(packet, size, target, scratch, &ignored);
      if (st != NameStatus::kOk) return st;
      if (total + scratch.length > kMaxNameLength) return NameStatus::kTooLong;
      *end = cursor + 2;
      return NameStatus::kOk;
    }
    if ((len & 0xC0) != 0) return NameStatus::kBadLabel;
    if (cursor + 1 + len > size) return NameStatus::kTruncated;
    total += 1 + len;
    if (total > kMaxNameLength) return NameStatus::kTooLong;
    cursor += 1 + len;
    if (len == 0) {
      *end = cursor;
      return NameStatus::kOk;
    }
  }
}

void lowercase(NameBuf& name) {
  lowerCopy(name.data, name.data, name.length);
}

namespace {

// The eight octets of x with 'A'..'Z' turned into 'a'..'z' (SWAR: each octet's top bit says
// whether it is an uppercase ASCII letter, shifted down to the 0x20 bit). No carry crosses an
// octet: the 7-bit values plus 0x3F or 0x25 stay below 0x100.
uint64_t lower8(uint64_t x) {
  constexpr uint64_t k01 = 0x0101010101010101ULL;
  constexpr uint64_t k80 = 0x8080808080808080ULL;
  const uint64_t low7 = x & ~k80;
  const uint64_t at_least_a = low7 + k01 * (0x80 - 'A');
  const uint64_t above_z = low7 + k01 * (0x7F - 'Z');
  const uint64_t upper = at_least_a & ~above_z & ~x & k80;
  return x | (upper >> 2);
}

}  // namespace

void lowerCopy(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) dst[i] = asciiLower(src[i]);
    return;
  }
  // Whole words, then the last eight octets (overlapping the previous word; lowercasing twice
  // changes nothing, and each word is read from src before it is written to dst).
  uint64_t w;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    std::memcpy(&w, src + i, 8);
    w = lower8(w);
    std::memcpy(dst + i, &w, 8);
  }
  std::memcpy(&w, src + n - 8, 8);
  w = lower8(w);
  std::memcpy(dst + n - 8, &w, 8);
}

size_t wireLength(const uint8_t* p) {
  size_t n = 0;
  while (p[n] != 0) n += 1 + p[n];
  return n + 1;
}

std::string toText(const uint8_t* wire) {
  std::string out;
  if (wire[0] == 0) return ".";
  for (size_t n = 0; wire[n] != 0; n += 1 + wire[n]) {
    const uint8_t len = wire[n];
    for (size_t i = 1; i <= len; ++i) {
      const uint8_t c = wire[n + i];
      if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
          c == '$') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c <= 0x20 || c >= 0x7F) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
  }
  return out;
}

bool fromText(std::string_view text, NameBuf& out, const NameBuf* origin) {
  out.length = 0;
  out.label_count = 0;
  if (text == ".") {
    out.data[0] = 0;
    out.length = 1;
    return true;
  }
  if (text.empty()) return false;
  if (text == "@") {
    if (origin == nullptr) return false;
    out = *origin;
    return true;
  }
  size_t len = 0;
  uint8_t label[kMaxLabelLength + 1];
  size_t label_len = 0;
  bool absolute = false;
  auto flush = [&]() -> bool {
    if (label_len == 0) return false;
    if (len + 1 + label_len + 1 > kMaxNameLength || out.label_count >= kMaxLabels) return false;
    out.label_offset[out.label_count++] = static_cast<uint8_t>(len);
    out.data[len++] = static_cast<uint8_t>(label_len);
    std::memcpy(out.data + len, label, label_len);
    len += label_len;
    label_len = 0;
    return true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (!flush()) return false;
      if (i + 1 == text.size()) absolute = true;
      continue;
    }
    uint8_t byte = static_cast<uint8_t>(c);
    if (c == '\\') {
      if (i + 1 >= text.size()) return false;
      if (text[i + 1] >= '0' && text[i + 1] <= '9') {
        if (i + 3 >= text.size()) return false;  // "\DDD" needs three digits
        unsigned v = 0;
        for (size_t k = 1; k <= 3; ++k) {
          const char d = text[i + k];
          if (d < '0' || d > '9') return false;
          v = v * 10 + static_cast<unsigned>(d - '0');
        }
        if (v > 255) return false;
        byte = static_cast<uint8_t>(v);
        i += 3;
      } else {
        byte = static_cast<uint8_t>(text[i + 1]);
        i += 1;
      }
    }
    if (label_len >= kMaxLabelLength) return false;
    label[label_len++] = byte;
  }
  if (label_len > 0 && !flush()) return false;
  if (!absolute && origin != nullptr) {
    if (len + origin->length > kMaxNameLength) return false;
    for (size_t k = 0; k < origin->label_count; ++k) {
      out.label_offset[out.label_count++] = static_cast<uint8_t>(len + origin->label_offset[k]);
    }
    std::memcpy(out.data + len, origin->data, origin->length);
    len += origin->length;
  } else {
    out.data[len++] = 0;
  }
  out.length = static_cast<uint8_t>(len);
  return true;
}

bool equalNames(const uint8_t* a, const uint8_t* b) {
  for (;;) {
    if (*a != *b) return false;
    const uint8_t len = *a;
    if (len == 0) return true;
    for (size_t i = 1; i <= len; ++i) {
      if (asciiLower(a[i]) != asciiLower(b[i])) return false;
    }
    a += 1 + len;
    b += 1 + len;
  }
}

bool isSubdomain(const uint8_t* name, size_t name_len, const uint8_t* apex, size_t apex_len) {
  if (name_len < apex_len) return false;
  size_t pos = 0;
  while (name_len - pos > apex_len) pos += 1 + name[pos];
  return name_len - pos == apex_len && std::memcmp(name + pos, apex, apex_len) == 0;
}

}  // namespace meridian::dns
