#include "resolver/root_hints.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/file.h"

namespace meridian::resolver {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool isNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

meridian::Result<std::vector<Endpoint>> parseRootHints(std::string_view text,
                                                       const std::string& source, bool ipv6) {
  std::vector<Endpoint> out;
  std::vector<std::string> root_ns;  // the names "." NS lists (upper case, with the final dot)
  struct Addr {
    std::string name;
    Endpoint e;
  };
  std::vector<Addr> addrs;
  std::istringstream in{std::string(text)};
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (const size_t semi = line.find(';'); semi != std::string::npos) line.resize(semi);
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty()) continue;
    const std::string where = source + ":" + std::to_string(lineno) + ": ";
    // owner [TTL] [IN] TYPE RDATA, TTL and class in either order (RFC 1035 §5.1).
    size_t i = 1;
    while (i < f.size() - 1 && (isNumber(f[i]) || upper(f[i]) == "IN")) ++i;
    if (i + 1 >= f.size()) return Error{where + "expected 'owner [TTL] [IN] TYPE RDATA'"};
    const std::string type = upper(f[i]);
    const std::string owner = upper(f[0]);
    const std::string& rdata = f[i + 1];
    if (type == "NS") {
      if (owner != ".") return Error{where + "an NS record for " + f[0] + ", not the root"};
      root_ns.push_back(upper(rdata));
    } else if (type == "A" || type == "AAAA") {
      Addr a;
      a.name = owner;
      a.e.ipv6 = type == "AAAA";
      if (::inet_pton(a.e.ipv6 ? AF_INET6 : AF_INET, rdata.c_str(), a.e.address) != 1) {
        return Error{where + "'" + rdata + "' is not an " + (a.e.ipv6 ? "IPv6" : "IPv4") +
                     " address"};
      }
      addrs.push_back(a);
    } else {
      return Error{where + "record type " + f[i] + " does not belong in root hints (NS, A, AAAA)"};
    }
  }
  for (const Addr& a : addrs) {
    bool listed = false;
    for (const std::string& n : root_ns) listed = listed || n == a.name;
    if (listed && (ipv6 || !a.e.ipv6)) out.push_back(a.e);
  }
  if (out.empty()) {
    return Error{source + ": no address of a root name server (\". NS name\" and that name's A" +
                 std::string(ipv6 ? "/AAAA" : "") + " record)"};
  }
  return out;
}

meridian::Result<std::vector<Endpoint>> loadRootHints(const std::string& path, bool ipv6) {
  std::ifstream f(path);
  if (!f) return Error{core::errnoText("cannot read root hints", path)};
  std::ostringstream text;
  text << f.rdbuf();
  return parseRootHints(text.str(), path, ipv6);
}

}  // namespace meridian::resolver
