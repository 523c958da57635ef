// API keys: named, scoped (read-only or read-write, optionally limited to a list of zones) and
// stored hashed. The configuration holds only the stored form `sha256$SALT$DIGEST` (hex; DIGEST =
// SHA-256(SALT bytes || secret)), printed by `meridian api hash-key`. A request's X-API-Key is
// hashed with each key's salt and compared in constant time (CRYPTO_memcmp). A key is a random
// secret of high entropy, so one salted SHA-256 is enough (no PBKDF2 stretching, which would cost
// the control loop milliseconds per request). Control loop only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace meridian::api {

enum class Scope {
  kReadOnly,   // GET (and HEAD) only
  kReadWrite,  // every method
};

// A key as configured ([[api.key]]).
struct KeyConfig {
  std::string name;
  std::string hash;  // sha256$SALT$DIGEST
  Scope scope = Scope::kReadOnly;
  // Empty: every zone. Otherwise the zones (any case, trailing dot optional) the key may touch.
  std::vector<std::string> zones;
};

// What a route needs from the key that calls it.
enum class Access {
  kRead,
  kWrite,
  kOpen,  // no key needed (the server skips authentication): /metrics when configured so
};

// "Example.COM" -> "example.com.": zone names as keys compare them.
[[nodiscard]] std::string canonicalZone(std::string_view zone);

// The stored form of `secret` with a fresh random salt (16 bytes from RAND_bytes).
[[nodiscard]] std::string hashSecret(std::string_view secret);
// The same with a given salt (tests).
[[nodiscard]] std::string hashSecret(std::string_view secret, std::string_view salt);
// "read-only" / "read-write".
[[nodiscard]] Result<Scope> parseScope(std::string_view text);
[[nodiscard]] const char* scopeText(Scope s);

class ApiKey {
 public:
  // Checks the stored form; the error names what is wrong with it.
  [[nodiscard]] static Result<ApiKey> make(const KeyConfig& config);
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] Scope scope() const { return scope_; }
  // Whether the key may touch `zone` (always, when it lists no zones).
  [[nodiscard]] bool allowsZone(std::string_view zone) const;
  [[nodiscard]] bool allows(Access access) const {
    return access != Access::kWrite || scope_ == Scope::kReadWrite;
  }
  // Constant-time comparison of SHA-256(salt || secret) with the stored digest.
  [[nodiscard]] bool matches(std::string_view secret) const;

 private:
  std::string name_;
  Scope scope_ = Scope::kReadOnly;
  std::vector<std::string> zones_;  // canonicalZone()
  std::string salt_;                // bytes
  std::array<uint8_t, 32> digest_{};
};

class Authenticator {
 public:
  Authenticator() = default;
  explicit Authenticator(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}
  // Every key's configuration checked; the first bad one (or a duplicate name) is the error.
  [[nodiscard]] static Result<Authenticator> make(const std::vector<KeyConfig>& keys);
  // The key whose secret this is, or nullptr. Every key is compared (no early exit on a match),
  // so the time taken does not tell which key, if any, matched.
  [[nodiscard]] const ApiKey* find(std::string_view secret) const;
  [[nodiscard]] bool empty() const { return keys_.empty(); }

 private:
  std::vector<ApiKey> keys_;
};

}  // namespace meridian::api
