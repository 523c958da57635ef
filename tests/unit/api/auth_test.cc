// API keys (hashing, scopes, zones) and the router's matching.
#include <catch2/catch.hpp>

#include "api/auth.h"
#include "api/router.h"

using namespace meridian;
using meridian::api::http::verb;

TEST_CASE("a hashed key matches its secret only", "[api][auth]") {
  const std::string stored = api::hashSecret("s3cret", std::string(16, '\x01'));
  CHECK(stored == "sha256$01010101010101010101010101010101$" + stored.substr(40));
  auto key = api::ApiKey::make({"ops", stored, api::Scope::kReadWrite, {}});
  REQUIRE(key.has_value());
  CHECK(key->matches("s3cret"));
  CHECK_FALSE(key->matches("s3cre"));
  CHECK_FALSE(key->matches("s3cret "));
  // A fresh salt each time: one secret, two stored forms, both matching.
  const std::string a = api::hashSecret("same");
  const std::string b = api::hashSecret("same");
  CHECK(a != b);
  CHECK(api::ApiKey::make({"a", a, api::Scope::kReadOnly, {}})->matches("same"));
  CHECK(api::ApiKey::make({"b", b, api::Scope::kReadOnly, {}})->matches("same"));
}

TEST_CASE("a malformed stored hash or a duplicate key name is refused", "[api][auth]") {
  for (const char* bad : {"", "s3cret", "sha256$zz$00", "sha256$0101$abcd", "md5$01$00"}) {
    CAPTURE(bad);
    auto k = api::ApiKey::make({"k", bad, api::Scope::kReadOnly, {}});
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error().message.find("key 'k': hash must be sha256$SALT$DIGEST") == 0);
  }
  const std::string h = api::hashSecret("x");
  auto dup = api::Authenticator::make(
      {{"k", h, api::Scope::kReadOnly, {}}, {"k", h, api::Scope::kReadWrite, {}}});
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error().message == "key 'k' configured twice");
}

TEST_CASE("scopes and zones of a key", "[api][auth]") {
  auto ro = api::ApiKey::make({"ro", api::hashSecret("x"), api::Scope::kReadOnly, {}}).value();
  CHECK(ro.allows(api::Access::kRead));
  CHECK_FALSE(ro.allows(api::Access::kWrite));
  CHECK(ro.allowsZone("anything.org."));
  auto zoned =
      api::ApiKey::make({"z", api::hashSecret("x"), api::Scope::kReadWrite, {"Example.COM"}})
          .value();
  CHECK(zoned.allows(api::Access::kWrite));
  CHECK(zoned.allowsZone("example.com."));
  CHECK(zoned.allowsZone("EXAMPLE.com"));
  CHECK_FALSE(zoned.allowsZone("sub.example.com."));
  CHECK(api::parseScope("read-write").value() == api::Scope::kReadWrite);
  CHECK_FALSE(api::parseScope("admin").has_value());
}

TEST_CASE("Authenticator finds the key of a secret", "[api][auth]") {
  auto auth = api::Authenticator::make({{"a", api::hashSecret("one"), api::Scope::kReadOnly, {}},
                                        {"b", api::hashSecret("two"), api::Scope::kReadWrite, {}}})
                  .value();
  REQUIRE(auth.find("two") != nullptr);
  CHECK(auth.find("two")->name() == "b");
  CHECK(auth.find("one")->name() == "a");
  CHECK(auth.find("three") == nullptr);
  CHECK(auth.find("") == nullptr);
}

TEST_CASE("Router: parameters, 404 and 405", "[api][router]") {
  api::Router r;
  int called = 0;
  r.add(verb::get, "/api/v1/servers/{server}/zones/{zone}", api::Access::kRead, [&](api::Request&) {
    ++called;
    return api::Response{};
  });
  r.add(verb::get, "/api/v1/servers", api::Access::kRead,
        [](api::Request&) { return api::Response{}; });
  auto m = r.match(verb::get, "/api/v1/servers/localhost/zones/a%2Fb.example.");
  REQUIRE(m.route != nullptr);
  CHECK(m.route->zone_scoped);
  CHECK(m.params["server"] == "localhost");
  CHECK(m.params["zone"] == "a/b.example.");
  CHECK(r.match(verb::head, "/api/v1/servers").route != nullptr);
  auto wrong = r.match(verb::delete_, "/api/v1/servers");
  CHECK(wrong.route == nullptr);
  CHECK(wrong.path_known);
  for (const char* unknown : {"/api/v1/servers/", "/api/v1", "/api/v1/servers/x/zones/",
                              "/api/v1/servers/x/zones//", "/"}) {
    CAPTURE(unknown);
    CHECK_FALSE(r.match(verb::get, unknown).path_known);
  }
}

TEST_CASE("query parameters are %-decoded", "[api][router]") {
  boost::beast::http::request<boost::beast::http::string_body> msg;
  api::Request q{msg, "/x", "name=www.example.com.&type=A&client=192.0.2.1%2F24&q=a+b"};
  CHECK(q.queryParam("name") == "www.example.com.");
  CHECK(q.queryParam("client") == "192.0.2.1/24");
  CHECK(q.queryParam("q") == "a b");
  CHECK(q.queryParam("missing").empty());
}
