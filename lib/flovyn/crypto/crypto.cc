#include "flovyn/crypto/crypto.h"

#include <memory>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

namespace flovyn::crypto {
namespace {
const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }
constexpr const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}  // namespace

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(U(out), static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
  return out;
}

std::string RandomToken(size_t n) { return Base64UrlEncode(RandomBytes(n)); }

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  // Canonical base64url only (RFC 7515 section 2): no padding, no '+' or '/', and the unused
  // low bits of the last character zero, so one byte string has exactly one encoding.
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out += static_cast<char>((acc >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  if (bits >= 6) return std::nullopt;                        // a lone trailing character cannot encode a byte
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-zero padding bits
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char x) -> int {
    if (x >= '0' && x <= '9') return x - '0';
    if (x >= 'a' && x <= 'f') return x - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string Sha256(std::string_view data) {
  std::string out(32, '\0');
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), U(out), &len, EVP_sha256(), nullptr);
  return out;
}

std::string Sha256Hex(std::string_view data) { return Hex(Sha256(data)); }

std::string HmacSha256(std::string_view key, std::string_view data) { return Hmac(Digest::kSha256, key, data); }

std::string Hmac(Digest digest, std::string_view key, std::string_view data) {
  const EVP_MD* md = digest == Digest::kSha1 ? EVP_sha1() : digest == Digest::kSha512 ? EVP_sha512() : EVP_sha256();
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), U(data), data.size(), U(out), &len);
  out.resize(len);
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(U(out), U(bytes), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Hkdf(std::string_view secret, std::string_view salt, std::string_view info, size_t length) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                  EVP_PKEY_CTX_free);
  std::string out(length, '\0');
  size_t len = length;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U(salt), static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(secret), static_cast<int>(secret.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info), static_cast<int>(info.size())) <= 0 ||
      EVP_PKEY_derive(ctx.get(), U(out), &len) <= 0 || len != length) {
    throw std::runtime_error("HKDF failed");
  }
  return out;
}

namespace {
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
constexpr size_t kNonce = 12, kTag = 16;
}  // namespace

std::string Seal(std::string_view key, std::string_view plaintext, std::string_view associated) {
  if (key.size() != 32) throw std::invalid_argument("AES-256-GCM needs a 32-byte key");
  std::string nonce = RandomBytes(kNonce);
  std::string out = nonce;
  out.resize(kNonce + plaintext.size() + kTag);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(nonce)) != 1 ||
      (!associated.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(associated), static_cast<int>(associated.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), U(out) + kNonce, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), U(out) + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, U(out) + kNonce + plaintext.size()) != 1) {
    throw std::runtime_error("AES-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> Open(std::string_view key, std::string_view box, std::string_view associated) {
  if (key.size() != 32 || box.size() < kNonce + kTag) return std::nullopt;
  std::string_view nonce = box.substr(0, kNonce);
  std::string_view body = box.substr(kNonce, box.size() - kNonce - kTag);
  std::string tag(box.substr(box.size() - kTag));
  std::string out(body.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(nonce)) != 1) return std::nullopt;
  if (!associated.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(associated), static_cast<int>(associated.size())) != 1) {
    return std::nullopt;
  }
  if (EVP_DecryptUpdate(ctx.get(), U(out), &len, U(body), static_cast<int>(body.size())) != 1) return std::nullopt;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1) return std::nullopt;
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), U(out) + len, &fin) != 1) return std::nullopt;
  return out;
}

}  // namespace flovyn::crypto
