// Small, well-trodden primitives over OpenSSL: randomness, encodings, hashes, HMAC, HKDF and
// AES-256-GCM sealing. Everything else that handles secrets builds on these.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flovyn::crypto {

std::string RandomBytes(size_t n);
// n random bytes, base64url without padding.
std::string RandomToken(size_t n);

std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);  // padding optional
std::string Hex(std::string_view bytes);                            // lowercase
// The bytes of lowercase hex text; nullopt when the length is odd or a character is not 0-9a-f.
std::optional<std::string> FromHex(std::string_view text);

std::string Sha256(std::string_view data);  // raw 32 bytes
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
enum class Digest { kSha1, kSha256, kSha512 };
std::string Hmac(Digest digest, std::string_view key, std::string_view data);  // raw bytes
// Standard base64 with padding (RFC 4648 section 4), as webhook senders sign with.
std::string Base64Encode(std::string_view bytes);
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// HKDF-SHA256 (RFC 5869).
std::string Hkdf(std::string_view secret, std::string_view salt, std::string_view info, size_t length);

// AES-256-GCM with a random 12-byte nonce: nonce || ciphertext || tag. `key` is 32 bytes.
std::string Seal(std::string_view key, std::string_view plaintext, std::string_view associated = {});
// nullopt when the key is wrong or the box was altered.
std::optional<std::string> Open(std::string_view key, std::string_view box, std::string_view associated = {});

}  // namespace flovyn::crypto
