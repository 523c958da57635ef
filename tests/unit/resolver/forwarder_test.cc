// resolver/forwarder.h without the network: the query Meridian sends upstream, and which forward
// zone a name goes to (longest match).
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "../testutil.h"
#include "resolver/forwarder.h"

using namespace meridian;

namespace {

std::string wire(const std::string& text) {
  dns::NameBuf n;
  REQUIRE(dns::fromText(text, n));
  dns::lowercase(n);
  return std::string(reinterpret_cast<const char*>(n.data), n.length);
}

bool covers(const resolver::Forwarder& f, const std::string& name) {
  const std::string w = wire(name);
  return f.covers(reinterpret_cast<const uint8_t*>(w.data()), w.size());
}

}  // namespace

TEST_CASE("the upstream query: RD=1, the question as asked, OPT with the DO bit", "[forwarder]") {
  dns::NameBuf n;
  REQUIRE(dns::fromText("WwW.Example.ORG.", n));
  resolver::ForwardQuestion q{n.data, n.length, dns::rrtype::kAAAA, dns::rrclass::kIN, true};
  uint8_t out[512];
  const size_t len = resolver::buildUpstreamQuery(q, 1232, out);
  auto d = test::decode(out, len);
  REQUIRE(d.ok);
  CHECK(d.rd);
  CHECK_FALSE(d.qr);
  CHECK(d.question == std::vector<std::string>{"WwW.Example.ORG. IN AAAA"});
  CHECK(d.has_opt);
  CHECK(d.opt_payload == 1232);
  CHECK(d.opt_do);
  q.dnssec_ok = false;
  CHECK_FALSE(test::decode(out, resolver::buildUpstreamQuery(q, 1232, out)).opt_do);
}

TEST_CASE("forward zones: the longest match picks the channel", "[forwarder]") {
  boost::asio::io_context io;
  resolver::Forwarder f(io);
  CHECK_FALSE(covers(f, "www.example.org."));
  auto errors = f.configure(
      {{wire("example.org."), {"127.0.0.1:5300"}}, {wire("sub.example.org."), {"[::1]:5301"}}});
  CHECK(errors.empty());
  CHECK(covers(f, "www.Example.org."));
  CHECK(covers(f, "a.sub.example.org."));
  CHECK_FALSE(covers(f, "example.net."));
  CHECK_FALSE(covers(f, "org."));
  errors = f.configure({{wire("."), {"127.0.0.1:5300"}}});
  CHECK(errors.empty());
  CHECK(covers(f, "example.net."));
}
