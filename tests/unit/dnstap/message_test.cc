// dnstap: the hand-written protobuf encoding decoded back by a test-only protobuf reader, and the
// query path's AUTH_QUERY/AUTH_RESPONSE written through a Writer to a Frame Streams file and read
// back with libfstrm's reader. Tests: unit_tests "[dnstap]".
#include <fstrm.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../testutil.h"
#include "dnstap/message.h"
#include "dnstap/writer.h"
#include "server/pipeline.h"
#include "zones/loader.h"

using namespace meridian;

namespace {

// One decoded protobuf field: a varint or fixed32 value, or the octets of a length-delimited one.
struct Field {
  int wire_type = -1;
  uint64_t value = 0;
  std::string bytes;
};
using Fields = std::multimap<uint32_t, Field>;

// Decodes a protobuf message into its fields; fails the test on malformed input.
Fields decodePb(const std::string& in) {
  Fields out;
  size_t i = 0;
  auto varint = [&]() -> uint64_t {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      REQUIRE(i < in.size());
      const auto b = static_cast<uint8_t>(in[i++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    FAIL("varint too long");
    return 0;
  };
  while (i < in.size()) {
    const uint64_t key = varint();
    Field f;
    f.wire_type = static_cast<int>(key & 7);
    if (f.wire_type == 0) {
      f.value = varint();
    } else if (f.wire_type == 5) {
      REQUIRE(i + 4 <= in.size());
      for (int k = 0; k < 4; ++k) f.value |= uint64_t{static_cast<uint8_t>(in[i + k])} << (8 * k);
      i += 4;
    } else if (f.wire_type == 2) {
      const uint64_t len = varint();
      REQUIRE(i + len <= in.size());
      f.bytes = in.substr(i, len);
      i += len;
    } else {
      FAIL("unexpected wire type " << f.wire_type);
    }
    out.emplace(static_cast<uint32_t>(key >> 3), f);
  }
  return out;
}

const Field& one(const Fields& f, uint32_t number) {
  REQUIRE(f.count(number) == 1);
  return f.find(number)->second;
}

std::string str(const uint8_t* p, size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string encodeToString(const dnstap::Event& ev, std::string_view identity,
                           std::string_view version) {
  std::string out(dnstap::encodedSize(ev, identity, version), '\0');
  const size_t n =
      dnstap::encode(ev, identity, version, reinterpret_cast<uint8_t*>(out.data()), out.size());
  REQUIRE(n == out.size());
  return out;
}

// The frames of a Frame Streams file with the dnstap content type.
std::vector<std::string> readFrames(const std::string& path) {
  fstrm_file_options* fopt = fstrm_file_options_init();
  fstrm_file_options_set_file_path(fopt, path.c_str());
  fstrm_reader_options* ropt = fstrm_reader_options_init();
  const char kType[] = "protobuf:dnstap.Dnstap";
  fstrm_reader_options_add_content_type(ropt, kType, sizeof kType - 1);
  fstrm_reader* r = fstrm_file_reader_init(fopt, ropt);
  fstrm_file_options_destroy(&fopt);
  fstrm_reader_options_destroy(&ropt);
  REQUIRE(r != nullptr);
  REQUIRE(fstrm_reader_open(r) == fstrm_res_success);
  std::vector<std::string> frames;
  const uint8_t* data = nullptr;
  size_t len = 0;
  while (fstrm_reader_read(r, &data, &len) == fstrm_res_success) frames.push_back(str(data, len));
  fstrm_reader_destroy(&r);
  return frames;
}

}  // namespace

TEST_CASE("dnstap: a message decodes back to the published schema's fields", "[dnstap]") {
  const uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  const uint8_t response[] = {0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xde, 0xad};
  const uint8_t zone[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
  dnstap::Event ev;
  ev.type = dnstap::MessageType::kAuthResponse;
  ev.protocol = dnstap::Protocol::kTcp;
  ev.query_endpoint = {
      true, true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 53000};
  ev.response_endpoint = {
      true, true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 53}, 53};
  ev.query_time = {1764640000, 123456789};
  ev.response_time = {1764640001, 4000000000u};
  ev.query_message = query;
  ev.query_len = sizeof query;
  ev.response_message = response;
  ev.response_len = sizeof response;
  ev.query_zone = zone;
  ev.zone_len = sizeof zone;

  const Fields top = decodePb(encodeToString(ev, "ns1.example", "meridian 0.1.0"));
  CHECK(one(top, 1).bytes == "ns1.example");
  CHECK(one(top, 2).bytes == "meridian 0.1.0");
  CHECK(one(top, 15).value == 1);  // Dnstap.Type MESSAGE
  REQUIRE(one(top, 14).wire_type == 2);
  const Fields m = decodePb(one(top, 14).bytes);
  CHECK(one(m, 1).value == 2);  // AUTH_RESPONSE
  CHECK(one(m, 2).value == 2);  // INET6
  CHECK(one(m, 3).value == 2);  // TCP
  CHECK(one(m, 4).bytes == str(ev.query_endpoint.address, 16));
  CHECK(one(m, 5).bytes == str(ev.response_endpoint.address, 16));
  CHECK(one(m, 6).value == 53000);
  CHECK(one(m, 7).value == 53);
  CHECK(one(m, 8).value == 1764640000);
  CHECK(one(m, 9).wire_type == 5);  // fixed32
  CHECK(one(m, 9).value == 123456789);
  CHECK(one(m, 10).bytes == str(query, sizeof query));
  CHECK(one(m, 11).bytes == str(zone, sizeof zone));
  CHECK(one(m, 12).value == 1764640001);
  CHECK(one(m, 13).value == 4000000000u);
  CHECK(one(m, 14).bytes == str(response, sizeof response));
}

TEST_CASE("dnstap: absent parts are left out; a short buffer is refused", "[dnstap]") {
  const uint8_t query[] = {0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  dnstap::Event ev;
  ev.type = dnstap::MessageType::kClientQuery;
  ev.query_endpoint = {true, false, {192, 0, 2, 7}, 4242};
  ev.query_message = query;
  ev.query_len = sizeof query;
  const std::string wire = encodeToString(ev, "", "");
  const Fields top = decodePb(wire);
  CHECK(top.count(1) == 0);
  CHECK(top.count(2) == 0);
  const Fields m = decodePb(one(top, 14).bytes);
  CHECK(one(m, 1).value == 5);  // CLIENT_QUERY
  CHECK(one(m, 2).value == 1);  // INET
  CHECK(one(m, 3).value == 1);  // UDP
  CHECK(one(m, 4).bytes == std::string("\xc0\x00\x02\x07", 4));
  CHECK(one(m, 6).value == 4242);
  for (uint32_t absent : {5u, 7u, 8u, 9u, 11u, 12u, 13u, 14u}) CHECK(m.count(absent) == 0);

  std::vector<uint8_t> small(wire.size() - 1);
  CHECK(dnstap::encode(ev, "", "", small.data(), small.size()) == 0);
}

TEST_CASE("dnstap: the query path logs sampled AUTH_QUERY/AUTH_RESPONSE pairs to a file",
          "[dnstap]") {
  auto z = zones::loadZoneText("example.com", R"(
$ORIGIN example.com.
$TTL 300
@   SOA ns1 hostmaster 1 7200 3600 1209600 300
@   NS  ns1
ns1 A   192.0.2.1
www A   192.0.2.10
)");
  REQUIRE_OK(z);
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({z->zone});
  Published<server::ServingState> state{s};

  char dir[] = "/tmp/meridian-dnstap-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/tap.fstrm";
  dnstap::Settings settings;
  settings.file_path = path;
  settings.identity = "unit";
  settings.sample_rate = 2;
  const bool responses = GENERATE(true, false);
  settings.log_responses = responses;

  server::Peer peer;
  peer.known = true;
  peer.address[0] = 198;
  peer.address[1] = 51;
  peer.address[2] = 100;
  peer.address[3] = 9;
  peer.port = 40000;
  std::vector<std::vector<uint8_t>> sampled;
  uint64_t sent = 0;
  {
    auto writer = dnstap::Writer::open(settings, 1);
    REQUIRE_OK(writer);
    server::QueryHandler handler(state);
    handler.setDnstap((*writer)->sink(0));
    uint8_t out[4096];
    for (uint16_t id = 1; id <= 4; ++id) {
      test::QueryOptions o;
      o.id = id;
      auto q = test::makeQuery("www.example.com", dns::rrtype::kA, o);
      REQUIRE(handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer) >
              0);
      if (id % 2 == 0) sampled.push_back(q);  // one in two: the 2nd and the 4th
    }
    sent = handler.counters().dnstap_sent.load();
    CHECK(handler.counters().dnstap_dropped.load() == 0);
  }  // the writer is destroyed: the file is complete

  const auto frames = readFrames(path);
  const size_t per_query = responses ? 2 : 1;
  REQUIRE(frames.size() == sampled.size() * per_query);
  CHECK(sent == frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const Fields top = decodePb(frames[i]);
    CHECK(one(top, 1).bytes == "unit");
    const Fields m = decodePb(one(top, 14).bytes);
    const bool is_response = responses && i % 2 == 1;
    CHECK(one(m, 1).value == (is_response ? 2u : 1u));
    CHECK(one(m, 3).value == 1);  // UDP
    CHECK(one(m, 4).bytes == std::string("\xc6\x33\x64\x09", 4));
    CHECK(one(m, 6).value == 40000);
    CHECK(m.count(8) == 1);  // query time, in both
    const auto& q = sampled[i / per_query];
    if (is_response) {
      CHECK(m.count(10) == 0);
      const std::string resp = one(m, 14).bytes;
      REQUIRE(resp.size() > 12);
      CHECK(resp.substr(0, 2) == str(q.data(), 2));        // the same message id
      CHECK((static_cast<uint8_t>(resp[2]) & 0x80) != 0);  // QR
      CHECK(m.count(12) == 1);
    } else {
      CHECK(one(m, 10).bytes == str(q.data(), q.size()));
      CHECK(m.count(14) == 0);
    }
  }
  std::remove(path.c_str());
  ::rmdir(dir);
}
