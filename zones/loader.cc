// Zone-file reader. The file is read whole, split into entries by our own tokenizer (RFC 1035 §5.1:
// comments, quoted strings, backslash escapes, parentheses that join lines, a blank owner repeating
// the previous one, $ORIGIN, $TTL, $INCLUDE), and every entry is checked here: owner name, TTL,
// class and type, then the RDATA fields whose meaning does not depend on the type's special syntax
// (names, integers, SOA timers, field counts, RFC 3597 "\#" lengths). The RDATA of the common
// types (A, AAAA, NS, CNAME, DNAME, PTR, MX, TXT, SPF, SOA, SRV, CAA) is converted to wire form
// here, straight from the tokens; every other type, and any record the native conversion does not
// accept, goes through ldns's text parser, which gives the same octets (the unit tests compare the
// two on every supported form) and, when it refuses, the fields are tried one by one so the
// message names the field and the offending text. A record with an error therefore always reaches
// the ldns path and keeps the message it had before the native conversion existed. Errors are
// collected, not returned at the first one: the caller gets every problem of the file, each as
// "file:line: message" at the line where the entry starts.
//
// Runs on the control thread (startup, reload, `meridian check`); linear in the size of the file.
#include "zones/loader.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "zones/zone_builder.h"

namespace meridian::zones {
namespace {

// RFC 7208 §3.1's SPF type: TXT's format.
constexpr uint16_t kSpf = 99;
// RFC 8659 §4.1 (not among dns/wire.h's types: nothing but the loader reads it).
constexpr uint16_t kCaa = 257;
// $INCLUDE nesting beyond this is almost certainly a loop.
constexpr int kMaxIncludeDepth = 8;
// RFC 2181 §8: TTLs are unsigned 32-bit values whose top bit must be zero.
constexpr uint64_t kMaxTtl = 0x7FFFFFFFu;
// Offending text longer than this is shortened in messages (a 64 KB TXT would drown the log).
constexpr size_t kQuoteLimit = 40;

// Concatenation by append: cheaper than operator+ chains, and it keeps GCC 12's -Wrestrict false
// positive on inlined basic_string operator+ (seen at -O3) away from this file.
std::string cat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (auto p : parts) n += p.size();
  std::string s;
  s.reserve(n);
  for (auto p : parts) s.append(p.data(), p.size());
  return s;
}

std::string quote(std::string_view text) {
  if (text.size() <= kQuoteLimit) return cat({"'", text, "'"});
  return cat({"'", text.substr(0, kQuoteLimit - 3), "\u2026'"});
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isDigit(c)) return false;
  }
  return true;
}

// Decimal number without sign, base prefix or trailing text, at most `max`.
bool parseDecimal(std::string_view s, uint64_t max, uint64_t& out) {
  if (!allDigits(s)) return false;
  uint64_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > max) return false;
  }
  out = v;
  return true;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ::strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

// Presentation-format name (RFC 1035 §5.1): "@", absolute, or relative to `origin`. Returns "" or
// what is wrong with it.
std::string parseNameText(std::string_view text, const dns::NameBuf& origin, dns::NameBuf& out) {
  out.length = 0;
  out.label_count = 0;
  if (text == "@") {
    out = origin;
    return {};
  }
  if (text.empty()) return "empty name";
  if (text == ".") {
    out.data[0] = 0;
    out.length = 1;
    return {};
  }
  if (text.front() == '"') return cat({"quoted text ", quote(text), " where a name is expected"});
  uint8_t label[dns::kMaxLabelLength];
  size_t label_len = 0;
  size_t len = 0;
  bool absolute = false;
  bool too_long = false;
  auto flush = [&]() -> std::string {
    if (label_len == 0) return cat({"empty label in ", quote(text)});
    if (len + 1 + label_len + 1 > dns::kMaxNameLength) {
      too_long = true;
      label_len = 0;
      return {};
    }
    out.label_offset[out.label_count++] = static_cast<uint8_t>(len);
    out.data[len++] = static_cast<uint8_t>(label_len);
    std::memcpy(out.data + len, label, label_len);
    len += label_len;
    label_len = 0;
    return {};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (auto e = flush(); !e.empty()) return e;
      if (i + 1 == text.size()) absolute = true;
      continue;
    }
    uint8_t byte = static_cast<uint8_t>(c);
    if (c == '\\') {
      if (i + 1 >= text.size()) return cat({"backslash at the end of ", quote(text)});
      if (isDigit(text[i + 1])) {
        uint64_t v = 0;
        if (i + 3 >= text.size() || !parseDecimal(text.substr(i + 1, 3), 255, v)) {
          return cat({"bad \\DDD escape (three digits, at most 255) in ", quote(text)});
        }
        byte = static_cast<uint8_t>(v);
        i += 3;
      } else {
        byte = static_cast<uint8_t>(text[i + 1]);
        i += 1;
      }
    }
    if (label_len >= dns::kMaxLabelLength)
      return cat({"label longer than 63 octets in ", quote(text)});
    label[label_len++] = byte;
  }
  if (label_len > 0) {
    if (auto e = flush(); !e.empty()) return e;
  }
  if (!absolute) {
    for (size_t k = 0; k < origin.label_count && !too_long; ++k) {
      const uint8_t* l = origin.data + origin.label_offset[k];
      if (len + 1 + l[0] + 1 > dns::kMaxNameLength) {
        too_long = true;
        break;
      }
      out.label_offset[out.label_count++] = static_cast<uint8_t>(len);
      std::memcpy(out.data + len, l, 1 + l[0]);
      len += 1 + l[0];
    }
  }
  if (too_long) {
    return cat({"name longer than 255 octets: ", quote(text),
                absolute ? std::string_view() : std::string_view(" (with the origin appended)")});
  }
  out.data[len++] = 0;
  out.length = static_cast<uint8_t>(len);
  return {};
}

struct LdnsRdf {
  ldns_rdf* p = nullptr;
  LdnsRdf() = default;
  LdnsRdf(const LdnsRdf&) = delete;
  LdnsRdf& operator=(const LdnsRdf&) = delete;
  ~LdnsRdf() { reset(nullptr); }
  void reset(ldns_rdf* q) {
    if (p != nullptr) ldns_rdf_deep_free(p);
    p = q;
  }
};

// How the loader checks an RDATA field before ldns sees it.
enum class FieldKind {
  kName,    // checked here (label and name lengths), relative to the origin
  kInt8,    // strict decimal, range checked here (ldns wraps 300 to 44)
  kInt16,   // (ldns wraps 99999 to 34463)
  kInt32,   // (ldns wraps 99999999999)
  kPeriod,  // SOA timers: BIND units, converted here to a plain number for ldns
  kToken,   // one token, converted by ldns (addresses, strings, algorithms, ...)
  kMulti,   // may span several tokens (base64, hex, type bitmaps, LOC, ...): ldns only
};

FieldKind kindOf(ldns_rdf_type t) {
  switch (t) {
    case LDNS_RDF_TYPE_DNAME:
      return FieldKind::kName;
    case LDNS_RDF_TYPE_INT8:
      return FieldKind::kInt8;
    case LDNS_RDF_TYPE_INT16:
      return FieldKind::kInt16;
    case LDNS_RDF_TYPE_INT32:
      return FieldKind::kInt32;
    case LDNS_RDF_TYPE_PERIOD:
      return FieldKind::kPeriod;
    case LDNS_RDF_TYPE_A:
    case LDNS_RDF_TYPE_AAAA:
    case LDNS_RDF_TYPE_STR:
    case LDNS_RDF_TYPE_B32_EXT:
    case LDNS_RDF_TYPE_TYPE:
    case LDNS_RDF_TYPE_CLASS:
    case LDNS_RDF_TYPE_CERT_ALG:
    case LDNS_RDF_TYPE_ALG:
    case LDNS_RDF_TYPE_TIME:
    case LDNS_RDF_TYPE_NSEC3_SALT:
    case LDNS_RDF_TYPE_NSEC3_NEXT_OWNER:
    case LDNS_RDF_TYPE_ILNP64:
    case LDNS_RDF_TYPE_EUI48:
    case LDNS_RDF_TYPE_EUI64:
    case LDNS_RDF_TYPE_TAG:
    case LDNS_RDF_TYPE_LONG_STR:
    case LDNS_RDF_TYPE_CERTIFICATE_USAGE:
    case LDNS_RDF_TYPE_SELECTOR:
    case LDNS_RDF_TYPE_MATCHING_TYPE:
      return FieldKind::kToken;
    default:
      return FieldKind::kMulti;
  }
}

const char* describe(ldns_rdf_type t) {
  switch (t) {
    case LDNS_RDF_TYPE_DNAME:
      return "domain name";
    case LDNS_RDF_TYPE_INT8:
      return "8-bit number";
    case LDNS_RDF_TYPE_INT16:
      return "16-bit number";
    case LDNS_RDF_TYPE_INT32:
      return "32-bit number";
    case LDNS_RDF_TYPE_PERIOD:
      return "time value";
    case LDNS_RDF_TYPE_A:
      return "IPv4 address";
    case LDNS_RDF_TYPE_AAAA:
      return "IPv6 address";
    case LDNS_RDF_TYPE_STR:
      return "character string";
    case LDNS_RDF_TYPE_LONG_STR:
      return "string";
    case LDNS_RDF_TYPE_TYPE:
      return "record type";
    case LDNS_RDF_TYPE_ALG:
    case LDNS_RDF_TYPE_CERT_ALG:
      return "algorithm";
    case LDNS_RDF_TYPE_TIME:
      return "time stamp";
    case LDNS_RDF_TYPE_B64:
      return "base64 data";
    case LDNS_RDF_TYPE_HEX:
      return "hex data";
    case LDNS_RDF_TYPE_B32_EXT:
    case LDNS_RDF_TYPE_NSEC3_NEXT_OWNER:
      return "base32 hash";
    case LDNS_RDF_TYPE_NSEC3_SALT:
      return "salt";
    case LDNS_RDF_TYPE_TAG:
      return "tag";
    default:
      return "field";
  }
}

// RFC 1035 §3.3.13 field names, for the record operators most often get wrong.
constexpr const char* kSoaFields[7] = {"SOA MNAME", "SOA RNAME",  "SOA serial", "SOA refresh",
                                       "SOA retry", "SOA expire", "SOA minimum"};

bool isClassToken(std::string_view t) {
  if (equalsNoCase(t, "IN") || equalsNoCase(t, "CH") || equalsNoCase(t, "HS") ||
      equalsNoCase(t, "CS") || equalsNoCase(t, "NONE") || equalsNoCase(t, "ANY")) {
    return true;
  }
  return startsWithNoCase(t, "CLASS") && allDigits(t.substr(5));
}

// RR type from a mnemonic or RFC 3597 "TYPEnnn"; 0 if neither.
uint16_t parseType(std::string_view t) {
  if (startsWithNoCase(t, "TYPE")) {
    uint64_t v = 0;
    return parseDecimal(t.substr(4), 65535, v) ? static_cast<uint16_t>(v) : 0;
  }
  const std::string s(t);
  return static_cast<uint16_t>(ldns_get_rr_type_by_name(s.c_str()));
}

// Reads a whole regular file. Refuses directories, devices and FIFOs before opening them (a FIFO
// would block the control thread).
SourceFile stamp(const std::string& path, const struct stat& st) {
  return SourceFile{path, static_cast<int64_t>(st.st_mtim.tv_sec),
                    static_cast<int64_t>(st.st_mtim.tv_nsec), static_cast<int64_t>(st.st_size),
                    static_cast<uint64_t>(st.st_ino)};
}

std::string readRegularFile(const std::string& path, std::string& out,
                            std::vector<SourceFile>* read = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cat({"cannot open: ", std::strerror(errno)});
  if (read != nullptr) read->push_back(stamp(path, st));
  if (S_ISDIR(st.st_mode)) return "is a directory, not a zone file";
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cat({"cannot open: ", std::strerror(errno)});
  out.clear();
  out.resize(static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() * 2 + 4096);
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = cat({"cannot read: ", std::strerror(errno)});
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return {};
}

struct Token {
  std::string_view text;
  bool quoted = false;
};

struct Entry {
  int line = 0;          // where the entry starts
  bool inherit = false;  // began with blank space: the owner is the previous record's
  bool bad = false;      // the tokenizer already reported an error in it
  std::vector<Token> tokens;
};

// The state one file carries from entry to entry; an included file gets its own (RFC 1035 §5.1:
// $INCLUDE does not change the including file's origin).
struct FileState {
  const std::string* path = nullptr;
  dns::NameBuf origin;
  dns::NameBuf previous;  // owner of the previous record (a blank owner repeats it)
  uint32_t ttl = 0;       // $TTL, or the default
  LdnsRdf origin_rdf;     // the origin for ldns, which completes relative names in RDATA
};

// The flag of this thread's LoadStopScope, if any.
thread_local const std::atomic<bool>* t_load_stop = nullptr;

void checkLoadStop() {
  if (t_load_stop != nullptr && t_load_stop->load(std::memory_order_relaxed)) throw LoadAbandoned();
}

class Parser {
 public:
  Parser(ZoneBuilder& builder, std::vector<SourceFile>& includes, RdataPath path,
         uint64_t& via_ldns, RecordObserver* observer)
      : builder_(builder),
        observer_(observer),
        includes_(includes),
        native_(path == RdataPath::kNative),
        via_ldns_(via_ldns),
        buf_(ldns_buffer_new(4096)) {}
  ~Parser() { ldns_buffer_free(buf_); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  void parseFile(std::string_view text, const std::string& path, const dns::NameBuf& origin,
                 uint32_t ttl, int depth) {
    FileState fs;
    fs.path = &path;
    fs.ttl = ttl;
    setOrigin(fs, origin);
    fs.previous = origin;
    if (const void* nul = std::memchr(text.data(), 0, text.size()); nul != nullptr) {
      const size_t at = static_cast<size_t>(static_cast<const char*>(nul) - text.data());
      const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n');
      error(fs, static_cast<int>(line), "NUL byte: this is not a text zone file");
      return;
    }
    tokenize(text, fs, depth);
  }

 private:
  void error(const FileState& fs, int line, std::string_view message) {
    builder_.addError(cat({*fs.path, ":", std::to_string(line), ": ", message}));
  }

  void setOrigin(FileState& fs, const dns::NameBuf& origin) {
    fs.origin = origin;
    fs.origin_rdf.reset(ldns_dname_new_frm_data(origin.length, origin.data));
  }

  // RFC 1035 §5.1 lexical rules. An entry ends at a newline outside parentheses; comments run from
  // ';' to the end of the line; quoted strings keep blanks and ';'; a backslash escapes the next
  // character. Tokens keep their escapes and quotes: names are unescaped here, RDATA by ldns.
  void tokenize(std::string_view text, FileState& fs, int depth) {
    const size_t n = text.size();
    size_t p = 0;
    int line = 1;
    int parens = 0;
    int paren_line = 0;
    bool line_start = true;
    Entry e;
    auto finish = [&]() {
      if (!e.tokens.empty() && !e.bad) entry(e, fs, depth);
      e.tokens.clear();
      e.bad = false;
      e.inherit = false;
    };
    while (p < n) {
      const char c = text[p];
      if (line_start && parens == 0) {
        e.line = line;
        e.inherit = c == ' ' || c == '\t';
      }
      line_start = false;
      if (c == '\n') {
        ++line;
        ++p;
        line_start = true;
        if (parens == 0) finish();
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r') {
        ++p;
        continue;
      }
      if (c == ';') {
        while (p < n && text[p] != '\n') ++p;
        continue;
      }
      if (c == '(') {
        if (parens++ == 0) paren_line = line;
        ++p;
        continue;
      }
      if (c == ')') {
        if (parens == 0) {
          error(fs, line, "')' without a matching '('");
          e.bad = true;
        } else {
          --parens;
        }
        ++p;
        continue;
      }
      const size_t start = p;
      if (c == '"') {
        ++p;
        while (p < n && text[p] != '"' && text[p] != '\n') {
          p += (text[p] == '\\' && p + 1 < n && text[p + 1] != '\n') ? 2 : 1;
        }
        if (p >= n || text[p] != '"') {
          error(fs, line,
                cat({"unterminated quoted string ", quote(text.substr(start, p - start))}));
          e.bad = true;
          continue;
        }
        ++p;
        e.tokens.push_back(Token{text.substr(start, p - start), true});
        continue;
      }
      while (p < n) {
        const char d = text[p];
        if (d == '\\') {
          p += (p + 1 < n && text[p + 1] != '\n') ? 2 : 1;
          continue;
        }
        if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == ';' || d == '(' || d == ')' ||
            d == '"') {
          break;
        }
        ++p;
      }
      e.tokens.push_back(Token{text.substr(start, p - start), false});
    }
    if (parens > 0) {
      error(fs, paren_line, "'(' opened on this line is never closed");
      e.bad = true;
    }
    finish();
  }

  void entry(const Entry& e, FileState& fs, int depth) {
    const Token& first = e.tokens[0];
    if (!e.inherit && !first.quoted && first.text.front() == '$') {
      directive(e, fs, depth);
    } else {
      record(e, fs);
    }
  }

  void directive(const Entry& e, FileState& fs, int depth) {
    const std::string_view name = e.tokens[0].text;
    const size_t args = e.tokens.size() - 1;
    if (name == "$ORIGIN") {
      if (args != 1) return error(fs, e.line, "$ORIGIN needs exactly one domain name");
      dns::NameBuf o;
      if (auto m = parseNameText(e.tokens[1].text, fs.origin, o); !m.empty()) {
        return error(fs, e.line, cat({"invalid $ORIGIN: ", m}));
      }
      setOrigin(fs, o);
    } else if (name == "$TTL") {
      // RFC 2308 §4.
      if (args != 1) return error(fs, e.line, "$TTL needs exactly one value");
      uint32_t ttl = 0;
      if (auto m = checkTtl(e.tokens[1], "$TTL", ttl); !m.empty()) return error(fs, e.line, m);
      fs.ttl = ttl;
    } else if (name == "$INCLUDE") {
      include(e, fs, depth);
    } else {
      error(fs, e.line,
            cat({"unknown directive ", quote(name), " (supported: $ORIGIN, $TTL, $INCLUDE)"}));
    }
  }

  static std::string checkTtl(const Token& t, std::string_view what, uint32_t& out) {
    switch (t.quoted ? TtlStatus::kSyntax : parseTtl(t.text, out)) {
      case TtlStatus::kOk:
        return {};
      case TtlStatus::kRange:
        return cat({what, " ", quote(t.text), " is above 2147483647 (RFC 2181 \u00a78)"});
      case TtlStatus::kSyntax:
        break;
    }
    return cat({"invalid ", what, " ", quote(t.text),
                " (a number of seconds, or units s m h d w as in 1h30m)"});
  }

  // RFC 1035 §5.1: $INCLUDE <file> [<origin>]; the origin applies to the included file only.
  void include(const Entry& e, FileState& fs, int depth) {
    const size_t args = e.tokens.size() - 1;
    if (args < 1 || args > 2)
      return error(fs, e.line, "$INCLUDE needs a file name and an optional origin");
    if (depth >= kMaxIncludeDepth) return error(fs, e.line, "$INCLUDE nested too deeply");
    std::string_view file_text = e.tokens[1].text;
    if (e.tokens[1].quoted) file_text = file_text.substr(1, file_text.size() - 2);
    std::filesystem::path file{std::string(file_text)};
    if (file.is_relative()) file = std::filesystem::path(*fs.path).parent_path() / file;
    dns::NameBuf origin = fs.origin;
    if (args == 2) {
      if (auto m = parseNameText(e.tokens[2].text, fs.origin, origin); !m.empty()) {
        return error(fs, e.line, cat({"invalid $INCLUDE origin: ", m}));
      }
    }
    const std::string path = file.string();
    std::string content;
    if (auto m = readRegularFile(path, content, &includes_); !m.empty()) {
      return error(fs, e.line, cat({"$INCLUDE ", quote(path), ": ", m}));
    }
    parseFile(content, path, origin, fs.ttl, depth + 1);
  }

  // <owner> [<TTL>] [<class>] <type> <RDATA> (TTL and class in either order, RFC 1035 §5.1).
  void record(const Entry& e, FileState& fs) {
    const auto& t = e.tokens;
    size_t i = 0;
    dns::NameBuf owner;
    if (e.inherit) {
      owner = fs.previous;
    } else {
      if (auto m = parseNameText(t[0].text, fs.origin, owner); !m.empty()) {
        return error(fs, e.line, cat({"invalid owner name: ", m}));
      }
      fs.previous = owner;
      i = 1;
    }
    bool have_ttl = false;
    bool have_class = false;
    uint32_t ttl = fs.ttl;
    while (i < t.size() && !t[i].quoted) {
      const std::string_view s = t[i].text;
      if (isClassToken(s)) {
        if (have_class) return error(fs, e.line, cat({"second class ", quote(s)}));
        if (!equalsNoCase(s, "IN") && !equalsNoCase(s, "CLASS1")) {
          return error(fs, e.line, cat({"class ", s, " is not supported (only IN)"}));
        }
        have_class = true;
      } else if (isDigit(s.front())) {
        if (have_ttl) return error(fs, e.line, cat({"second TTL ", quote(s)}));
        if (auto m = checkTtl(t[i], "TTL", ttl); !m.empty()) return error(fs, e.line, m);
        have_ttl = true;
      } else {
        break;
      }
      ++i;
    }
    if (i >= t.size()) return error(fs, e.line, "record without a type");
    const uint16_t type = t[i].quoted ? 0 : parseType(t[i].text);
    if (type == 0) return error(fs, e.line, cat({"unknown type ", quote(t[i].text)}));
    if (isMetaType(type)) {
      return error(fs, e.line, cat({"type ", t[i].text, " exists only in queries, not in zones"}));
    }
    const std::string type_name = typeName(type);
    ++i;
    if (i >= t.size()) return error(fs, e.line, cat({"missing RDATA for ", type_name}));

    if (native_ && nativeRdata(t, i, type, fs)) {
      return add(owner, type, ttl, bytes_.data(), bytes_.size(), fs, e.line);
    }
    ++via_ldns_;
    std::string rdata_text;
    if (auto m = checkRdata(t, i, type, type_name, fs, rdata_text); !m.empty()) {
      return error(fs, e.line, m);
    }
    if (t[i].text == "\\#" && !knownToLdns(type)) {
      // RFC 3597 RDATA of a type ldns does not know is opaque: decode it here, at any length
      // (ldns reads a token of at most LDNS_MAX_RDFLEN characters, half that many octets).
      bytes_.clear();
      for (size_t k = i + 2; k < t.size(); ++k) {
        const std::string_view h = t[k].text;
        for (size_t j = 0; j + 1 < h.size(); j += 2) {
          bytes_.push_back(static_cast<uint8_t>(hexValue(h[j]) * 16 + hexValue(h[j + 1])));
        }
        if (h.size() % 2 != 0)
          return error(fs, e.line, cat({"odd number of hex digits in ", quote(h)}));
      }
      return add(owner, type, ttl, bytes_.data(), bytes_.size(), fs, e.line);
    }
    text_.assign(". 0 IN ");
    text_.append(type_name);
    text_.push_back(' ');
    text_.append(rdata_text);
    ldns_rr* rr = nullptr;
    const ldns_status st = ldns_rr_new_frm_str(&rr, text_.c_str(), 0, fs.origin_rdf.p, nullptr);
    if (st != LDNS_STATUS_OK) {
      return error(fs, e.line, diagnose(t, i, type, type_name, rdata_text, st));
    }
    ldns_buffer_clear(buf_);
    const ldns_status wst = ldns_rr_rdata2buffer_wire(buf_, rr);
    ldns_rr_free(rr);
    if (wst != LDNS_STATUS_OK) {
      return error(fs, e.line,
                   cat({"cannot encode ", type_name, " RDATA: ", ldns_get_errorstr_by_id(wst)}));
    }
    if (t[i].text == "\\#") {
      // RFC 3597 §5: generic RDATA of a known type must be a valid RDATA of that type. ldns
      // copies the octets as given (an A of 5 or 0 octets would be served as such).
      uint64_t declared = 0;
      (void)parseDecimal(t[i + 1].text, 65535, declared);  // checked by checkGenericRdata
      if (auto m = checkKnownRdata(type, type_name, declared); !m.empty()) {
        return error(fs, e.line, m);
      }
    }
    add(owner, type, ttl, ldns_buffer_begin(buf_), ldns_buffer_position(buf_), fs, e.line);
  }

  void add(const dns::NameBuf& owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
           size_t rdlen, const FileState& fs, int line) {
    if (++records_ % kLoadStopCheckRecords == 0) checkLoadStop();
    builder_.add(owner.data, type, dns::rrclass::kIN, ttl, rdata, rdlen, *fs.path,
                 static_cast<uint32_t>(line));
    if (observer_ != nullptr) observer_->record(owner.data, type, ttl, rdata, rdlen);
  }

  // The RDATA of the common types straight from the tokens into bytes_, as ldns would write it.
  // True when done; false (bytes_ then undefined) sends the record to the ldns path, which either
  // converts it (forms this does not take on, such as a quoted number) or reports the error, so
  // this never has to produce a message. It accepts nothing that path would refuse.
  bool nativeRdata(const std::vector<Token>& t, size_t first, uint16_t type, const FileState& fs) {
    const size_t count = t.size() - first;
    const Token* f = t.data() + first;
    bytes_.clear();
    if (f[0].text == "\\#") return false;
    switch (type) {
      case dns::rrtype::kA:
      case dns::rrtype::kAAAA:
        return count == 1 && putAddress(f[0], type == dns::rrtype::kA);
      case dns::rrtype::kNS:
      case dns::rrtype::kCNAME:
      case dns::rrtype::kDNAME:
      case dns::rrtype::kPTR:
        return count == 1 && putName(f[0], fs);
      case dns::rrtype::kMX:
        return count == 2 && putNumber(f[0], 2) && putName(f[1], fs);
      case dns::rrtype::kSRV:
        return count == 4 && putNumber(f[0], 2) && putNumber(f[1], 2) && putNumber(f[2], 2) &&
               putName(f[3], fs);
      case dns::rrtype::kSOA:
        // RFC 1035 §3.3.13: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM; timers may carry
        // BIND units, as checkRdata converts them for ldns.
        if (count != 7 || !putName(f[0], fs) || !putName(f[1], fs) || !putNumber(f[2], 4)) {
          return false;
        }
        for (size_t k = 3; k < 7; ++k) {
          uint32_t v = 0;
          if (f[k].quoted || parseTtl(f[k].text, v) != TtlStatus::kOk) return false;
          putU32(v);
        }
        return true;
      case dns::rrtype::kTXT:
      case kSpf:
        for (size_t k = 0; k < count; ++k) {
          if (!putStrings(f[k])) return false;
        }
        return bytes_.size() <= 65535;
      case kCaa:
        // RFC 8659 §4.1: flags, tag (letters and digits; ldns takes up to 255 of them), value.
        if (count != 3 || !putNumber(f[0], 1) || f[1].quoted || f[1].text.size() > 255) {
          return false;
        }
        bytes_.push_back(static_cast<uint8_t>(f[1].text.size()));
        for (const char c : f[1].text) {
          if (std::isalnum(static_cast<unsigned char>(c)) == 0) return false;
          bytes_.push_back(static_cast<uint8_t>(c));
        }
        // The value quoted: ldns refuses it bare, and the native path accepts no more than it.
        return f[2].quoted && putOctets(unquoted(f[2])) && bytes_.size() <= 65535;
      default:
        return false;
    }
  }

  static std::string_view unquoted(const Token& tok) {
    return tok.quoted ? tok.text.substr(1, tok.text.size() - 2) : tok.text;
  }

  void putU32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes_.push_back(static_cast<uint8_t>(v >> shift));
  }

  // inet_pton, as ldns_str2rdf_a/_aaaa use.
  bool putAddress(const Token& tok, bool v4) {
    if (tok.quoted || tok.text.size() >= 64) return false;
    char text[64];
    std::memcpy(text, tok.text.data(), tok.text.size());
    text[tok.text.size()] = '\0';
    uint8_t addr[16];
    if (::inet_pton(v4 ? AF_INET : AF_INET6, text, addr) != 1) return false;
    bytes_.insert(bytes_.end(), addr, addr + (v4 ? 4 : 16));
    return true;
  }

  // A domain name, relative to the origin unless absolute ("@" is the origin), uncompressed.
  bool putName(const Token& tok, const FileState& fs) {
    dns::NameBuf name;
    if (tok.quoted || !parseNameText(tok.text, fs.origin, name).empty()) return false;
    bytes_.insert(bytes_.end(), name.data, name.data + name.length);
    return true;
  }

  // An unsigned decimal of `octets` (1, 2 or 4) octets, network order.
  bool putNumber(const Token& tok, int octets) {
    uint64_t v = 0;
    if (tok.quoted || !parseDecimal(tok.text, (uint64_t{1} << (8 * octets)) - 1, v)) return false;
    for (int k = octets - 1; k >= 0; --k) bytes_.push_back(static_cast<uint8_t>(v >> (8 * k)));
    return true;
  }

  // Decodes a string token's text (quotes removed) into octets: \DDD (three digits, at most 255)
  // and \X escapes, RFC 1035 §5.1. False on a malformed escape.
  template <typename Sink>
  static bool decodeText(std::string_view text, Sink&& sink) {
    for (size_t p = 0; p < text.size(); ++p) {
      uint8_t c = static_cast<uint8_t>(text[p]);
      if (c == '\\') {
        if (p + 1 >= text.size()) return false;
        if (isDigit(text[p + 1])) {
          uint64_t v = 0;
          if (p + 3 >= text.size()) return false;  // fewer than three digits follow
          if (!parseDecimal(text.substr(p + 1, 3), 255, v)) return false;
          c = static_cast<uint8_t>(v);
          p += 3;
        } else {
          c = static_cast<uint8_t>(text[++p]);
        }
      }
      sink(c);
    }
    return true;
  }

  bool putOctets(std::string_view text) {
    return decodeText(text, [this](uint8_t c) { bytes_.push_back(c); });
  }

  // One TXT token as <character-string>s (RFC 1035 §3.3.14): a length octet and up to 255 octets;
  // a longer text is split every 255 octets, as splitLongString does for ldns. "" is one empty
  // string.
  bool putStrings(const Token& tok) {
    size_t length_at = bytes_.size();
    bytes_.push_back(0);
    return decodeText(unquoted(tok), [this, &length_at](uint8_t c) {
      if (bytes_[length_at] == 255) {
        length_at = bytes_.size();
        bytes_.push_back(0);
      }
      ++bytes_[length_at];
      bytes_.push_back(c);
    });
  }

  // The wire RDATA in buf_, read back as `type` and written again: it must be all the octets
  // written, parse, hold at least the type's mandatory fields, and give the same octets.
  std::string checkKnownRdata(uint16_t type, const std::string& type_name, uint64_t declared) {
    const uint8_t* rdata = ldns_buffer_begin(buf_);
    const size_t rdlen = ldns_buffer_position(buf_);
    if (rdlen != declared) {
      // ldns read the fields it knows and dropped the rest (an A of 5 octets becomes 4).
      return cat({"RFC 3597 RDATA of ", std::to_string(declared), " octets is not a valid ",
                  type_name, " RDATA"});
    }
    std::vector<uint8_t> wire(2 + rdlen);
    dns::writeU16(wire.data(), static_cast<uint16_t>(rdlen));
    std::copy(rdata, rdata + rdlen, wire.begin() + 2);
    ldns_rr* rr = ldns_rr_new();  // no fields yet (ldns_rr_new_frm_type would add empty ones)
    ldns_rr_set_type(rr, static_cast<ldns_rr_type>(type));
    size_t pos = 0;
    const ldns_status st = ldns_wire2rdf(rr, wire.data(), wire.size(), &pos);
    bool same = false;
    if (st == LDNS_STATUS_OK && pos == wire.size() &&
        ldns_rr_rd_count(rr) >= ldns_rr_descriptor_minimum(ldns_rr_descript(type))) {
      ldns_buffer* again = ldns_buffer_new(rdlen + 16);
      same = ldns_rr_rdata2buffer_wire(again, rr) == LDNS_STATUS_OK &&
             ldns_buffer_position(again) == rdlen &&
             std::equal(rdata, rdata + rdlen, ldns_buffer_begin(again));
      ldns_buffer_free(again);
    }
    ldns_rr_free(rr);
    if (same) return {};
    return cat({"RFC 3597 RDATA of ", std::to_string(rdlen), " octets is not a valid ", type_name,
                " RDATA", st == LDNS_STATUS_OK ? std::string_view() : std::string_view(": "),
                st == LDNS_STATUS_OK ? std::string_view()
                                     : std::string_view(ldns_get_errorstr_by_id(st))});
  }

  static bool knownToLdns(uint16_t type) {
    const ldns_rr_descriptor* d = ldns_rr_descript(type);
    return d != nullptr && d->_type == type;
  }

  static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    return (c | 0x20) - 'a' + 10;
  }

  static std::string typeName(uint16_t type) {
    const ldns_rr_descriptor* d = ldns_rr_descript(type);
    if (d != nullptr && d->_type == type && d->_name != nullptr) return d->_name;
    return cat({"TYPE", std::to_string(type)});
  }

  // "SOA refresh" for SOA fields; else the field's kind, and `where` becomes " (MX field 2)".
  static std::string fieldLabel(uint16_t type, const std::string& type_name, size_t k, size_t count,
                                ldns_rdf_type ft, std::string* where = nullptr) {
    if (type == dns::rrtype::kSOA && k < 7) return kSoaFields[k];
    if (count > 1 && where != nullptr) {
      *where = cat({" (", type_name, " field ", std::to_string(k + 1), ")"});
    }
    return describe(ft);
  }

  static std::string fieldError(uint16_t type, const std::string& type_name, size_t k, size_t count,
                                ldns_rdf_type ft, std::string_view problem) {
    std::string where;
    std::string label = fieldLabel(type, type_name, k, count, ft, &where);
    return cat({"invalid ", label, " ", problem, where});
  }

  // Checks what can be checked without ldns and builds the RDATA text ldns will read (SOA timers
  // with units become plain numbers). Returns "" or an error message.
  std::string checkRdata(const std::vector<Token>& t, size_t first, uint16_t type,
                         const std::string& type_name, const FileState& fs, std::string& out) {
    const size_t count = t.size() - first;
    auto append = [&out](std::string_view s) {
      if (!out.empty()) out.push_back(' ');
      out.append(s.data(), s.size());
    };
    if (t[first].text == "\\#") return checkGenericRdata(t, first, type_name, out);
    const ldns_rr_descriptor* d = ldns_rr_descript(type);
    if (d == nullptr || d->_type != type) {
      return cat({type_name,
                  " has no known presentation format: write its RDATA as RFC 3597 "
                  "'\\# <length> <hex>'"});
    }
    const size_t min = ldns_rr_descriptor_minimum(d);
    const size_t max = ldns_rr_descriptor_maximum(d);
    bool simple = max > 0;  // every field one token: token k is field k
    if (max == 0) {
      for (size_t k = 0; k < count; ++k) append(t[first + k].text);
      return {};
    }
    for (size_t k = 0; k < count; ++k) {
      const size_t fk = k < max ? k : max - 1;
      const ldns_rdf_type ft = ldns_rr_descriptor_field_type(d, fk);
      const FieldKind kind = kindOf(ft);
      if (kind == FieldKind::kMulti || (k >= max && d->_variable == LDNS_RDF_TYPE_NONE)) {
        simple = simple && kind != FieldKind::kMulti;
        for (; k < count; ++k) append(t[first + k].text);
        break;
      }
      const Token& tok = t[first + k];
      const auto label = [&] { return fieldLabel(type, type_name, fk, max, ft); };
      const auto fieldErr = [&](std::string_view problem) {
        return fieldError(type, type_name, fk, max, ft, problem);
      };
      uint64_t v = 0;
      switch (tok.quoted && kind != FieldKind::kToken ? FieldKind::kToken : kind) {
        case FieldKind::kName: {
          dns::NameBuf name;
          if (auto m = parseNameText(tok.text, fs.origin, name); !m.empty()) {
            std::string where;
            std::string lab = fieldLabel(type, type_name, fk, max, ft, &where);
            return cat({"invalid ", lab, where, ": ", m});
          }
          break;
        }
        case FieldKind::kInt8:
        case FieldKind::kInt16:
        case FieldKind::kInt32: {
          const uint64_t limit = kind == FieldKind::kInt8    ? 0xFFu
                                 : kind == FieldKind::kInt16 ? 0xFFFFu
                                                             : 0xFFFFFFFFu;
          if (!parseDecimal(tok.text, limit, v)) {
            return cat({fieldErr(quote(tok.text)), ": must be 0..", std::to_string(limit)});
          }
          break;
        }
        case FieldKind::kPeriod: {
          uint32_t p = 0;
          if (auto m = checkTtl(tok, label(), p); !m.empty()) return m;
          append(std::to_string(p));
          continue;
        }
        default:
          break;
      }
      if (type == dns::rrtype::kTXT || type == kSpf) {
        append(splitLongString(tok));
        continue;
      }
      append(tok.text);
    }
    if (simple && d->_variable == LDNS_RDF_TYPE_NONE) {
      if (count < min) {
        const ldns_rdf_type ft = ldns_rr_descriptor_field_type(d, count);
        std::string where;
        std::string label = fieldLabel(type, type_name, count, max, ft, &where);
        return cat({"missing ", label, where});
      }
      if (count > max) {
        return cat(
            {"unexpected text ", quote(t[first + max].text), " after the ", type_name, " RDATA"});
      }
    }
    return {};
  }

  // A TXT string longer than 255 octets (RFC 1035 §3.3: one length octet) becomes several strings
  // of at most 255, as Knot loads it (a DKIM key is often written as one long string); a shorter
  // one is returned as written.
  static std::string splitLongString(const Token& tok) {
    std::string_view text = tok.text;
    if (tok.quoted) text = text.substr(1, text.size() - 2);
    std::string out;
    size_t piece_start = 0;
    size_t octets = 0;
    auto flush = [&](size_t end) {
      if (!out.empty()) out.push_back(' ');
      out.push_back('"');
      out.append(text.substr(piece_start, end - piece_start));
      out.push_back('"');
      piece_start = end;
      octets = 0;
    };
    for (size_t p = 0; p < text.size();) {
      size_t unit = 1;  // the characters of one octet: a, \; or \059
      if (text[p] == '\\' && p + 1 < text.size()) {
        unit = (p + 3 < text.size() && isDigit(text[p + 1]) && isDigit(text[p + 2]) &&
                isDigit(text[p + 3]))
                   ? 4
                   : 2;
      }
      if (octets == 255) flush(p);
      p += unit;
      ++octets;
    }
    if (out.empty()) return std::string(tok.text);
    flush(text.size());
    return out;
  }

  // RFC 3597 §5: "\# <length> <hex>...": the length must match the hex.
  static std::string checkGenericRdata(const std::vector<Token>& t, size_t first,
                                       const std::string& type_name, std::string& out) {
    uint64_t len = 0;
    if (first + 1 >= t.size() || !parseDecimal(t[first + 1].text, 65535, len)) {
      return cat({"invalid RFC 3597 RDATA length for ", type_name,
                  ": '\\#' must be followed by "
                  "a length 0..65535"});
    }
    size_t digits = 0;
    out = "\\# ";
    out.append(t[first + 1].text);
    for (size_t k = first + 2; k < t.size(); ++k) {
      for (char c : t[k].text) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
          return cat({"invalid hex ", quote(t[k].text), " in RFC 3597 RDATA"});
        }
      }
      digits += t[k].text.size();
      out.push_back(' ');
      out.append(t[k].text);
    }
    if (digits != 2 * len) {
      return cat({"RFC 3597 RDATA length ", std::to_string(len), " does not match ",
                  digits % 2 == 0 ? std::to_string(digits / 2) + " octets"
                                  : std::to_string(digits) + " hex digits",
                  " of data"});
    }
    return {};
  }

  // ldns refused the RDATA: find the field it could not read, else quote its verdict.
  static std::string diagnose(const std::vector<Token>& t, size_t first, uint16_t type,
                              const std::string& type_name, const std::string& rdata_text,
                              ldns_status st) {
    const ldns_rr_descriptor* d = ldns_rr_descript(type);
    const size_t count = t.size() - first;
    if (d != nullptr && d->_type == type && t[first].text != "\\#") {
      const size_t max = ldns_rr_descriptor_maximum(d);
      for (size_t k = 0; k < count; ++k) {
        const size_t fk = k < max ? k : max - 1;
        const ldns_rdf_type ft = ldns_rr_descriptor_field_type(d, fk);
        if (ft == LDNS_RDF_TYPE_HEX || ft == LDNS_RDF_TYPE_B64) {
          // The last field, possibly split into several tokens: check its alphabet.
          for (size_t j = k; j < count; ++j) {
            for (char c : t[first + j].text) {
              const bool ok = ft == LDNS_RDF_TYPE_HEX
                                  ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                                  : std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' ||
                                        c == '/' || c == '=';
              if (!ok) return fieldError(type, type_name, fk, max, ft, quote(t[first + j].text));
            }
          }
          break;
        }
        if (kindOf(ft) == FieldKind::kMulti) break;
        if (kindOf(ft) != FieldKind::kToken) continue;
        const std::string tok(t[first + k].text);
        ldns_rdf* rdf = ldns_rdf_new_frm_str(ft, tok.c_str());
        if (rdf == nullptr) return fieldError(type, type_name, fk, max, ft, quote(tok));
        ldns_rdf_deep_free(rdf);
      }
    }
    return cat(
        {"invalid ", type_name, " RDATA ", quote(rdata_text), ": ", ldns_get_errorstr_by_id(st)});
  }

  ZoneBuilder& builder_;
  RecordObserver* observer_;  // nullptr for a plain load
  std::vector<SourceFile>& includes_;
  bool native_;
  uint64_t& via_ldns_;
  ldns_buffer* buf_;
  std::string text_;            // reused: the record handed to ldns
  std::vector<uint8_t> bytes_;  // reused: RFC 3597 RDATA decoded here
  uint64_t records_ = 0;        // for the LoadStopScope check
};

Result<LoadedZone> load(const std::string& origin, std::string_view text, const std::string& label,
                        RdataPath path, RecordObserver* observer) {
  dns::NameBuf apex;
  if (!dns::fromText(origin.empty() || origin.back() != '.' ? origin + "." : origin, apex)) {
    return Error{cat({"invalid zone name ", quote(origin)})};
  }
  ZoneBuilder builder(apex, label);
  LoadedZone loaded;
  {
    Parser parser(builder, loaded.includes, path, loaded.rdata_via_ldns, observer);
    // RFC 2308 §4 recommends $TTL; without it 3600 applies, as it always has here.
    parser.parseFile(text, label, apex, 3600, 0);
  }
  checkLoadStop();
  auto built = builder.build(loaded.warnings);
  if (!built) return built.error();
  loaded.zone = built.value();
  return loaded;
}

}  // namespace

LoadStopScope::LoadStopScope(const std::atomic<bool>& stop) {
  t_load_stop = &stop;
}
LoadStopScope::~LoadStopScope() {
  t_load_stop = nullptr;
}

bool SourceFile::unchanged() const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  const SourceFile now = stamp(path, st);
  return now.mtime_sec == mtime_sec && now.mtime_nsec == mtime_nsec && now.size == size &&
         now.inode == inode;
}

TtlStatus parseTtl(std::string_view s, uint32_t& out) {
  if (s.empty()) return TtlStatus::kSyntax;
  uint64_t total = 0;
  size_t i = 0;
  if (allDigits(s)) {
    for (char c : s) {
      total = total * 10 + static_cast<uint64_t>(c - '0');
      if (total > kMaxTtl) return TtlStatus::kRange;
    }
    out = static_cast<uint32_t>(total);
    return TtlStatus::kOk;
  }
  // BIND's units: every number carries one ("1h30" is refused, as BIND and Knot do).
  while (i < s.size()) {
    if (!isDigit(s[i])) return TtlStatus::kSyntax;
    uint64_t v = 0;
    while (i < s.size() && isDigit(s[i])) {
      v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(s[i] - '0'), kMaxTtl + 1);
      ++i;
    }
    if (i == s.size()) return TtlStatus::kSyntax;
    uint64_t unit = 0;
    switch (s[i]) {
      case 's':
      case 'S':
        unit = 1;
        break;
      case 'm':
      case 'M':
        unit = 60;
        break;
      case 'h':
      case 'H':
        unit = 3600;
        break;
      case 'd':
      case 'D':
        unit = 86400;
        break;
      case 'w':
      case 'W':
        unit = 604800;
        break;
      default:
        return TtlStatus::kSyntax;
    }
    ++i;
    total = std::min<uint64_t>(total + v * unit, kMaxTtl + 1);
  }
  if (total > kMaxTtl) return TtlStatus::kRange;
  out = static_cast<uint32_t>(total);
  return TtlStatus::kOk;
}

namespace {
Result<LoadedZone> loadFile(const std::string& origin, const std::string& path,
                            RecordObserver* observer) {
  std::string text;
  if (auto m = readRegularFile(path, text); !m.empty()) return Error{cat({path, ": ", m})};
  return load(origin, text, path, RdataPath::kNative, observer);
}
}  // namespace

Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path) {
  return loadFile(origin, path, nullptr);
}

Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path,
                                RecordObserver& observer) {
  return loadFile(origin, path, &observer);
}

Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                const std::string& label, RdataPath path) {
  return load(origin, text, label, path, nullptr);
}

Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                const std::string& label, RecordObserver& observer) {
  return load(origin, text, label, RdataPath::kNative, &observer);
}

}  // namespace meridian::zones
