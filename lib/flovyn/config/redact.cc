// Hiding secrets in what the configuration prints: URL credentials and query parameters, libpq
// keyword=value passwords, and values under password-like names.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "flovyn/config/config.h"

namespace flovyn::config {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Names under which connection strings and URLs carry credentials.
bool PasswordLike(std::string_view name) {
  std::string l = Lower(std::string(name));
  for (const char* w : {"password", "passwd", "pass", "pwd", "secret", "token", "key", "auth", "credential"}) {
    if (l.find(w) != std::string::npos) return true;
  }
  return false;
}

// "a=1&password=x" -> "a=1&password=***"
std::string RedactQuery(std::string_view q) {
  std::string out;
  while (true) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    auto eq = part.find('=');
    if (eq != std::string_view::npos && PasswordLike(part.substr(0, eq))) {
      out += std::string(part.substr(0, eq)) + "=***";
    } else {
      out += std::string(part);
    }
    if (amp == std::string_view::npos) break;
    out += '&';
    q.remove_prefix(amp + 1);
  }
  return out;
}

// libpq's keyword/value form: key = value pairs, values optionally single-quoted with
// backslash escapes, spaces allowed around '='.
std::string RedactKeywordValue(const std::string& text) {
  std::string out;
  size_t i = 0, n = text.size();
  auto space = [&](size_t k) { return k < n && std::isspace(static_cast<unsigned char>(text[k])); };
  while (i < n) {
    while (space(i)) ++i;
    if (i >= n) break;
    size_t k0 = i;
    while (i < n && text[i] != '=' && !space(i)) ++i;
    std::string key = text.substr(k0, i - k0);
    while (space(i)) ++i;
    std::string value;
    bool has_value = i < n && text[i] == '=';
    if (has_value) {
      ++i;
      while (space(i)) ++i;
      size_t v0 = i;
      if (i < n && text[i] == '\'') {
        ++i;
        while (i < n && text[i] != '\'') i += (text[i] == '\\' && i + 1 < n) ? 2 : 1;
        if (i < n) ++i;
      } else {
        while (i < n && !space(i)) ++i;
      }
      value = text.substr(v0, i - v0);
    }
    if (!out.empty()) out += ' ';
    out += key;
    if (has_value) out += "=" + (PasswordLike(key) ? std::string("***") : value);
  }
  return out;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  auto scheme = url.find("://");
  // keyword/value when it opens with "identifier =" (and is no URL)
  size_t k = url.find_first_not_of(" \t");
  size_t ident_end = k == std::string::npos
                         ? k
                         : url.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", k);
  size_t eq = ident_end == std::string::npos ? ident_end : url.find_first_not_of(" \t", ident_end);
  bool keyword_value = scheme == std::string::npos && ident_end != k && eq != std::string::npos && url[eq] == '=';
  if (keyword_value) return RedactKeywordValue(url);
  // [scheme://][userinfo@]host[:port][/path][?query][#fragment]; the userinfo is hidden whole
  // (a NATS token or a password), the user name kept when there is a password.
  size_t auth0 = scheme == std::string::npos ? 0 : scheme + 3;
  size_t auth_end = url.find_first_of("/?#", auth0);
  if (auth_end == std::string::npos) auth_end = url.size();
  std::string out = url.substr(0, auth0);
  std::string authority = url.substr(auth0, auth_end - auth0);
  auto at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    auto colon = userinfo.find(':');
    // A lone user name is no secret, except where the scheme carries a token there (NATS).
    std::string scheme_name = scheme == std::string::npos ? "" : Lower(url.substr(0, scheme));
    bool token_scheme = scheme_name == "nats" || scheme_name == "tls";
    if (colon != std::string::npos)
      out += userinfo.substr(0, colon) + ":***";
    else
      out += token_scheme ? std::string("***") : userinfo;
    out += authority.substr(at);
  } else {
    out += authority;
  }
  std::string rest = url.substr(auth_end);
  auto q = rest.find('?');
  if (q == std::string::npos) return out + rest;
  auto hash = rest.find('#', q);
  std::string query = rest.substr(q + 1, hash == std::string::npos ? std::string::npos : hash - q - 1);
  return out + rest.substr(0, q + 1) + RedactQuery(query) + (hash == std::string::npos ? "" : rest.substr(hash));
}

bool IsPasswordLikeKey(std::string_view key) {
  auto dot = key.rfind('.');
  return PasswordLike(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

}  // namespace flovyn::config
