// Route matching and the JSON helpers of router.h. Control loop only.
#include "api/router.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace meridian::api {

namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = path.empty() || path.front() != '/' ? 0 : 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool isParam(std::string_view seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) << 4 | hexValue(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string_view Request::header(std::string_view name) const {
  const auto it = message.find(boost::beast::string_view(name.data(), name.size()));
  if (it == message.end()) return {};
  const auto v = it->value();
  return {v.data(), v.size()};
}

std::string Request::queryParam(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    const size_t eq = pair.find('=');
    if (percentDecode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string()
                                          : percentDecode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return {};
}

Response Response::json(unsigned status, const boost::json::value& v) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(v);
  return r;
}

Response Response::error(unsigned status, std::string_view message) {
  return json(status, boost::json::object{{"error", message}});
}

void Router::add(http::verb method, std::string_view pattern, Access access, Handler handler) {
  Route r{method, {}, access, std::move(handler)};
  for (auto seg : split(pattern)) {
    r.segments.emplace_back(seg);
    if (seg == "{zone}") r.zone_scoped = true;
  }
  routes_.push_back(std::move(r));
}

Router::Match Router::match(http::verb method, std::string_view path) const {
  Match m;
  const auto segs = split(path);
  for (const Route& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& want = r.segments[i];
      if (isParam(want)) {
        if (segs[i].empty())
          ok = false;
        else
          params[want.substr(1, want.size() - 2)] = percentDecode(segs[i]);
      } else {
        ok = want == segs[i];
      }
    }
    if (!ok) continue;
    m.path_known = true;
    const bool same =
        r.method == method || (method == http::verb::head && r.method == http::verb::get);
    if (same && m.route == nullptr) {
      m.route = &r;
      m.params = std::move(params);
    }
  }
  return m;
}

}  // namespace meridian::api
