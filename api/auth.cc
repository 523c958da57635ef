// Salted SHA-256 API keys (auth.h). Control loop only.
#include "api/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>

namespace meridian::api {

namespace {

constexpr std::string_view kPrefix = "sha256$";
// 16 bytes of salt: a fresh one per key, so two keys with one secret do not share a digest.
constexpr size_t kSaltBytes = 16;

std::string hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unhex(std::string_view text, std::string& out) {
  if (text.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = nibble(text[i]);
    const int lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

std::array<uint8_t, 32> digestOf(std::string_view salt, std::string_view secret) {
  std::array<uint8_t, 32> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned len = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, salt.data(), salt.size());
  EVP_DigestUpdate(ctx, secret.data(), secret.size());
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

}  // namespace

std::string canonicalZone(std::string_view zone) {
  std::string out;
  out.reserve(zone.size() + 1);
  for (char c : zone) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (out.empty() || out.back() != '.') out.push_back('.');
  return out;
}

std::string hashSecret(std::string_view secret, std::string_view salt) {
  const auto d = digestOf(salt, secret);
  return std::string(kPrefix) + hex(reinterpret_cast<const uint8_t*>(salt.data()), salt.size()) +
         "$" + hex(d.data(), d.size());
}

std::string hashSecret(std::string_view secret) {
  uint8_t salt[kSaltBytes];
  if (RAND_bytes(salt, sizeof salt) != 1) throw std::runtime_error("RAND_bytes failed");
  return hashSecret(secret, std::string_view(reinterpret_cast<const char*>(salt), sizeof salt));
}

Result<Scope> parseScope(std::string_view text) {
  if (text == "read-only") return Scope::kReadOnly;
  if (text == "read-write") return Scope::kReadWrite;
  return Error{"scope must be read-only or read-write"};
}

const char* scopeText(Scope s) {
  return s == Scope::kReadWrite ? "read-write" : "read-only";
}

Result<ApiKey> ApiKey::make(const KeyConfig& config) {
  ApiKey k;
  k.name_ = config.name;
  k.scope_ = config.scope;
  for (const auto& z : config.zones) k.zones_.push_back(canonicalZone(z));
  const std::string_view h = config.hash;
  const size_t sep = h.find('$', kPrefix.size());
  std::string digest;
  if (h.substr(0, kPrefix.size()) != kPrefix || sep == std::string_view::npos ||
      !unhex(h.substr(kPrefix.size(), sep - kPrefix.size()), k.salt_) ||
      !unhex(h.substr(sep + 1), digest) || digest.size() != k.digest_.size()) {
    return Error{"key '" + config.name +
                 "': hash must be sha256$SALT$DIGEST in hex, as `meridian api hash-key` prints it"};
  }
  std::copy(digest.begin(), digest.end(), k.digest_.begin());
  return k;
}

bool ApiKey::allowsZone(std::string_view zone) const {
  if (zones_.empty()) return true;
  const std::string z = canonicalZone(zone);
  for (const auto& mine : zones_) {
    if (mine == z) return true;
  }
  return false;
}

bool ApiKey::matches(std::string_view secret) const {
  const auto d = digestOf(salt_, secret);
  return CRYPTO_memcmp(d.data(), digest_.data(), d.size()) == 0;
}

Result<Authenticator> Authenticator::make(const std::vector<KeyConfig>& keys) {
  std::vector<ApiKey> out;
  for (const auto& kc : keys) {
    for (const auto& other : out) {
      if (other.name() == kc.name) return Error{"key '" + kc.name + "' configured twice"};
    }
    auto k = ApiKey::make(kc);
    if (!k) return k.error();
    out.push_back(std::move(*k));
  }
  return Authenticator(std::move(out));
}

const ApiKey* Authenticator::find(std::string_view secret) const {
  const ApiKey* found = nullptr;
  for (const auto& k : keys_) {
    if (k.matches(secret) && found == nullptr) found = &k;
  }
  return found;
}

}  // namespace meridian::api
