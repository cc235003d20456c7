#include "profile.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <toml.hpp>

namespace flovyn::cli {

std::string ConfigPath(const std::optional<std::string>& flag) {
  if (flag) return *flag;
  if (const char* p = std::getenv("FLOVYN_CONFIG"); p != nullptr && *p != '\0') return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/flovyn/config.toml";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/flovyn/config.toml";
}

std::optional<std::string> LoadProfiles(const std::string& path, std::map<std::string, Profile>& out) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    auto doc = toml::parse(path);
    if (!doc.contains("profiles")) return std::nullopt;
    for (const auto& [name, table] : toml::find<toml::table>(doc, "profiles")) {
      Profile p;
      auto get = [&table = table](const char* key) -> std::string {
        if (!table.is_table() || !table.contains(key)) return "";
        return toml::get<std::string>(table.at(key));
      };
      p.server = get("server");
      p.api_key = get("api_key");
      p.tenant = get("tenant");
      out[name] = p;
    }
  } catch (const std::exception& e) {
    return "cannot read " + path + ": " + std::string(e.what()).substr(0, 300);
  }
  return std::nullopt;
}

std::optional<std::string> SaveProfiles(const std::string& path, const std::map<std::string, Profile>& profiles) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  toml::table all;
  for (const auto& [name, p] : profiles) {
    toml::table t;
    if (!p.server.empty()) t["server"] = p.server;
    if (!p.api_key.empty()) t["api_key"] = p.api_key;
    if (!p.tenant.empty()) t["tenant"] = p.tenant;
    all[name] = t;
  }
  toml::value doc(toml::table{{"profiles", all}});
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return "cannot write " + tmp;
    ::chmod(tmp.c_str(), 0600);
    f << doc;
    if (!f) return "cannot write " + tmp;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return "cannot write " + path + ": " + ec.message();
  return std::nullopt;
}

}  // namespace flovyn::cli
