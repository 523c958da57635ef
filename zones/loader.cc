#include "zones/loader.h"

#include <ldns/ldns.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "zones/zone_builder.h"

namespace meridian::zones {
namespace {

// $INCLUDE nesting beyond this is almost certainly a loop.
constexpr int kMaxIncludeDepth = 8;

struct LdnsRdf {
  ldns_rdf* p = nullptr;
  ~LdnsRdf() {
    if (p != nullptr) ldns_rdf_deep_free(p);
  }
};

class Parser {
 public:
  explicit Parser(ZoneBuilder& builder) : builder_(builder) {}

  // Parses one file (or in-memory text) into the builder; returns an error message or "".
  std::string parse(FILE* fp, const std::string& path, ldns_rdf* origin, uint32_t default_ttl,
                    int depth) {
    LdnsRdf origin_holder{ldns_rdf_clone(origin)};
    LdnsRdf prev;
    uint32_t ttl = default_ttl;
    int line = 1;
    char* peek = nullptr;
    size_t peek_cap = 0;
    std::string error;
    while (error.empty()) {
      // Look at the next physical line for $INCLUDE, which ldns leaves to its caller.
      const long pos = std::ftell(fp);
      const ssize_t got = getline(&peek, &peek_cap, fp);
      if (got < 0) break;
      if (std::strncmp(peek, "$INCLUDE", 8) == 0 && (peek[8] == ' ' || peek[8] == '\t')) {
        error = include(peek + 9, path, line, origin_holder.p, ttl, depth);
        ++line;
        continue;
      }
      if (std::fseek(fp, pos, SEEK_SET) != 0) {
        error = path + ": cannot seek: " + std::strerror(errno);
        break;
      }
      ldns_rr* rr = nullptr;
      const int start_line = line;
      const ldns_status st = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin_holder.p, &prev.p, &line);
      // ldns counts the newline that ends the entry, so the entry's last line is line - 1.
      const int entry_line = line > start_line ? line - 1 : line;
      if (st == LDNS_STATUS_OK) {
        add(rr, path, entry_line);
        ldns_rr_free(rr);
      } else if (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL ||
                 st == LDNS_STATUS_SYNTAX_ORIGIN) {
        continue;
      } else {
        error = path + ":" + std::to_string(entry_line) + ": " + ldns_get_errorstr_by_id(st);
      }
    }
    std::free(peek);
    return error;
  }

 private:
  std::string include(const char* rest, const std::string& path, int line, ldns_rdf* origin,
                      uint32_t ttl, int depth) {
    const std::string where = path + ":" + std::to_string(line);
    if (depth >= kMaxIncludeDepth) return where + ": $INCLUDE nested too deeply";
    std::string args(rest);
    if (auto semi = args.find(';'); semi != std::string::npos) args.resize(semi);
    std::vector<std::string> tokens;
    size_t i = 0;
    while (i < args.size()) {
      while (i < args.size() && std::isspace(static_cast<unsigned char>(args[i]))) ++i;
      if (i >= args.size()) break;
      std::string tok;
      if (args[i] == '"') {
        const size_t close = args.find('"', i + 1);
        if (close == std::string::npos) return where + ": unterminated quoted file name";
        tok = args.substr(i + 1, close - i - 1);
        i = close + 1;
      } else {
        while (i < args.size() && !std::isspace(static_cast<unsigned char>(args[i])))
          tok += args[i++];
      }
      tokens.push_back(tok);
    }
    if (tokens.empty() || tokens.size() > 2) return where + ": $INCLUDE needs a file name";
    std::filesystem::path file(tokens[0]);
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    LdnsRdf include_origin{ldns_rdf_clone(origin)};
    if (tokens.size() == 2) {
      // RFC 1035 §5.1: the optional origin applies to the included file only.
      ldns_rdf* o = nullptr;
      std::string text = tokens[1];
      if (text.back() != '.') {
        char* parent = ldns_rdf2str(origin);
        text += "." + std::string(parent);
        std::free(parent);
      }
      if (ldns_str2rdf_dname(&o, text.c_str()) != LDNS_STATUS_OK) {
        return where + ": bad $INCLUDE origin '" + tokens[1] + "'";
      }
      ldns_rdf_deep_free(include_origin.p);
      include_origin.p = o;
    }
    FILE* fp = std::fopen(file.c_str(), "r");
    if (fp == nullptr) {
      return where + ": cannot open included file " + file.string() + ": " + std::strerror(errno);
    }
    std::string err = parse(fp, file.string(), include_origin.p, ttl, depth + 1);
    std::fclose(fp);
    return err;
  }

  void add(ldns_rr* rr, const std::string& path, int line) {
    ldns_rdf* owner = ldns_rr_owner(rr);
    ldns_buffer* buf = ldns_buffer_new(1024);
    const std::string where = path + ":" + std::to_string(line);
    if (ldns_rr_rdata2buffer_wire(buf, rr) != LDNS_STATUS_OK) {
      ldns_buffer_free(buf);
      builder_.add(ldns_rdf_data(owner), 0, 0, 0, nullptr, 0, where);  // reported as an error
      return;
    }
    builder_.add(ldns_rdf_data(owner), static_cast<uint16_t>(ldns_rr_get_type(rr)),
                 static_cast<uint16_t>(ldns_rr_get_class(rr)), ldns_rr_ttl(rr),
                 ldns_buffer_begin(buf), ldns_buffer_position(buf), where);
    ldns_buffer_free(buf);
  }

  ZoneBuilder& builder_;
};

Result<LoadedZone> load(const std::string& origin, FILE* fp, const std::string& label) {
  dns::NameBuf apex;
  if (!dns::fromText(origin.empty() || origin.back() != '.' ? origin + "." : origin, apex)) {
    return Error{"invalid zone name '" + origin + "'"};
  }
  ldns_rdf* origin_rdf = nullptr;
  const std::string abs = dns::toText(apex.data);
  if (ldns_str2rdf_dname(&origin_rdf, abs.c_str()) != LDNS_STATUS_OK) {
    return Error{"invalid zone name '" + origin + "'"};
  }
  ZoneBuilder builder(apex);
  Parser parser(builder);
  // RFC 2308 §4 recommends $TTL; without it ldns' default of 3600 applies, as in BIND.
  std::string err = parser.parse(fp, label, origin_rdf, 3600, 0);
  ldns_rdf_deep_free(origin_rdf);
  if (!err.empty()) return Error{err};
  LoadedZone loaded;
  auto built = builder.build(loaded.warnings);
  if (!built) {
    const std::string& m = built.error().message;
    return Error{m.rfind(label, 0) == 0 ? m : label + ": " + m};
  }
  loaded.zone = built.value();
  return loaded;
}

}  // namespace

Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path) {
  FILE* fp = std::fopen(path.c_str(), "r");
  if (fp == nullptr) return Error{path + ": cannot open: " + std::strerror(errno)};
  auto r = load(origin, fp, path);
  std::fclose(fp);
  return r;
}

Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                const std::string& label) {
  FILE* fp = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  if (fp == nullptr) return Error{label + ": cannot read text"};
  auto r = load(origin, fp, label);
  std::fclose(fp);
  return r;
}

}  // namespace meridian::zones
