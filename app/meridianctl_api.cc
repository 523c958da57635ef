// meridianctl over the management API (meridianctl_api.h): a blocking Beast client, one request
// per command, and the answer put as the control socket's commands print it (or as JSON).
#include "app/meridianctl_api.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace meridian::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

struct Url {
  std::string host, port, prefix;
};

// http://HOST[:PORT][/PREFIX]; the port defaults to 8053 (the API's default).
bool parseUrl(const std::string& url, Url& out, std::string& error) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    error = url.rfind("https://", 0) == 0
                ? "--api: https is not supported by meridianctl yet; use http:// on loopback"
                : "--api: the URL must start with http://";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    out.prefix = rest.substr(slash);
    rest.resize(slash);
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  out.port = "8053";
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) {
      error = "--api: unterminated [address]";
      return false;
    }
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') out.port = rest.substr(close + 2);
  } else if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (out.host.empty() || out.port.empty()) {
    error = "--api: no host or port in '" + url + "'";
    return false;
  }
  return true;
}

std::string percentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

std::string healthTable(const json::value& body) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TARGET", "ADDRESS", "VERDICT", "OVERRIDE", "USABLE", "RTT", "LAST ERROR"}};
  for (const auto& e : body.at("endpoints").as_array()) {
    const auto& o = e.as_object();
    std::string rtt = "-";
    if (const auto* r = o.if_contains("rtt_ms"); r != nullptr && r->is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3fms", r->to_number<double>());
      rtt = buf;
    }
    const auto* err = o.if_contains("last_error");
    rows.push_back({text(o.at("id")), text(o.at("label")), text(o.at("address")),
                    o.at("checked").as_bool() ? text(o.at("verdict")) : "unchecked",
                    text(o.at("override")), o.at("usable").as_bool() ? "yes" : "no", rtt,
                    err != nullptr ? text(*err) : "-"});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

std::string explainText(const json::value& body) {
  const auto& e = body.as_object();
  std::string out;
  for (const auto& h : e.at("cnames").as_array()) {
    out += text(h.at("from")) + " is a CNAME to " + text(h.at("to")) + " (zone " +
           text(h.at("zone")) + ", TTL " + text(h.at("ttl")) + ")\n";
  }
  if (!e.at("steered").as_bool())
    return out + text(e.at("name")) + " is not a steered service; the zone data answers it\n";
  out += "service " + text(e.at("service")) + " " + text(e.at("type")) + ", client " +
         text(e.at("client")) + (e.at("from_ecs").as_bool() ? " (as ECS)" : "") + "\n";
  std::string chain;
  for (const auto& f : e.at("policy").as_array()) chain += (chain.empty() ? "" : " -> ") + text(f);
  out += "policy: " + chain + "\n";
  for (const auto& line : e.at("steps").as_array()) out += "  " + text(line) + "\n";
  std::string answer;
  for (const auto& a : e.at("answer").as_array()) answer += (answer.empty() ? "" : ", ") + text(a);
  out += "decision " + text(e.at("decision")) + ": " + (answer.empty() ? "-" : answer) + "\n";
  return out;
}

std::string reloadText(const json::value& body) {
  const auto& r = body.as_object();
  std::string out = std::string(r.at("failed").as_int64() == 0 ? "ok " : "error ") +
                    text(r.at("loaded")) + " zone(s) loaded, " + text(r.at("unchanged")) +
                    " unchanged, " + text(r.at("failed")) + " failed\n";
  for (const auto& w : r.at("warnings").as_array()) out += "  warning: " + text(w) + "\n";
  for (const auto& [name, err] : r.at("errors").as_object())
    out += "  " + std::string(name) + ": " + text(err) + "\n";
  return out;
}

}  // namespace

int apiCommand(const std::string& url, const std::string& key,
               const std::vector<std::string>& words, bool as_json) {
  Url u;
  std::string error;
  if (!parseUrl(url, u, error)) {
    std::fprintf(stderr, "meridianctl: %s\n", error.c_str());
    return 2;
  }
  if (key.empty()) {
    std::fprintf(stderr, "meridianctl: --api needs a key: --key KEY or $MERIDIAN_API_KEY\n");
    return 2;
  }
  http::verb method = http::verb::get;
  std::string target;
  const std::string cmd = words.empty() ? "" : words[0];
  if (cmd == "health" && words.size() == 1) {
    target = "/api/v1/health";
  } else if (cmd == "metrics" && words.size() == 1) {
    target = "/metrics";
  } else if (cmd == "reload" && words.size() == 1) {
    method = http::verb::post;
    target = "/api/v1/reload";
  } else if (cmd == "explain" && (words.size() == 3 || words.size() == 4)) {
    target = "/api/v1/explain?name=" + percentEncode(words[1]) +
             "&client=" + percentEncode(words.back()) +
             (words.size() == 4 ? "&type=" + percentEncode(words[2]) : "");
  } else {
    std::fprintf(stderr,
                 "meridianctl: with --api: health, explain NAME [TYPE] CLIENT, reload or "
                 "metrics\n");
    return 2;
  }
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(u.host, u.port));
    http::request<http::string_body> req{method, u.prefix + target, 11};
    req.set(http::field::host, u.host);
    req.set("X-API-Key", key);
    req.set(http::field::user_agent, "meridianctl");
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(stream, buf, parser);
    const auto& res = parser.get();
    const std::string& body = res.body();
    if (res.result_int() / 100 != 2) {
      boost::system::error_code ec;
      const json::value v = json::parse(body, ec);
      const json::value* msg = !ec && v.is_object() ? v.as_object().if_contains("error") : nullptr;
      std::fprintf(stderr, "meridianctl: %u %s\n", res.result_int(),
                   msg != nullptr ? text(*msg).c_str() : body.c_str());
      return 1;
    }
    if (as_json || cmd == "metrics") {
      std::fputs(body.c_str(), stdout);
      if (!body.empty() && body.back() != '\n') std::fputs("\n", stdout);
      return 0;
    }
    const json::value v = json::parse(body);
    const std::string out = cmd == "health"    ? healthTable(v)
                            : cmd == "explain" ? explainText(v)
                                               : reloadText(v);
    std::fputs(out.c_str(), stdout);
    return cmd == "reload" && v.at("failed").as_int64() != 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "meridianctl: %s: %s\n", url.c_str(), e.what());
    return 1;
  }
}

}  // namespace meridian::app
