#include "engine/values.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/limits.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::engine {

StatusOr<std::string> NormaliseJson(const std::string& text, const std::string& field) {
  if (text.empty()) return std::string("null");
  auto parsed = json_input::Parse(text, field, limits::JsonBounds());
  if (!parsed.ok()) return parsed.status();
  return parsed->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsSlug(const std::string& s) {
  if (s.empty() || s.size() > 63 || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::string NewUuid() {
  std::string b = crypto::RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string hex = crypto::Hex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

std::optional<std::string> JsonArray(const std::vector<std::string>& names, bool empty_is_null) {
  if (names.empty() && empty_is_null) return std::nullopt;
  return nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<std::string> NullIfEmpty(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

}  // namespace flovyn::engine
