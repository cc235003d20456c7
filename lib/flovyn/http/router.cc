#include "flovyn/http/router.h"

namespace flovyn::http {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool HasControl(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool MatchSegments(const Route& r, const std::vector<std::string>& parts, std::map<std::string, std::string>& params) {
  if (r.segments.size() != parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& s = r.segments[i];
    if (s.size() > 2 && s.front() == '{' && s.back() == '}') {
      params[s.substr(1, s.size() - 2)] = parts[i];
    } else if (s != parts[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  auto segments = Split(pattern);
  Route r{std::move(method), std::move(pattern), std::move(segments), std::move(handler), std::move(options)};
  routes_.push_back(std::move(r));
}

Match Router::Find(const std::string& method, const std::string& raw_path) const {
  Match m;
  auto parts = Split(raw_path);
  for (auto& p : parts) p = UrlDecode(p, false);
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchSegments(r, parts, params)) continue;
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      for (const auto& [name, value] : params) {
        if (HasControl(value)) m.bad_param = name;
      }
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    m.path_known = true;
  }
  return m;
}

}  // namespace flovyn::http
