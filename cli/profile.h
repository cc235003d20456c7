// Profiles: named sets of server URL, API key and tenant in a TOML file
// ($FLOVYN_CONFIG, else $XDG_CONFIG_HOME/flovyn/config.toml, else ~/.config/flovyn/config.toml):
//
//   [profiles.default]
//   server = "http://localhost:8000"
//   api_key = "..."
//   tenant = "acme"
//
// Flags beat environment variables (FLOVYN_SERVER, FLOVYN_API_KEY, FLOVYN_TENANT), which beat
// the profile (--profile or FLOVYN_PROFILE, else "default"). The file is written 0600: it holds
// keys.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace flovyn::cli {

struct Profile {
  std::string server, api_key, tenant;
};

std::string ConfigPath(const std::optional<std::string>& flag);

// The profiles in the file (none when it does not exist); an error message for a file that is
// not valid TOML or a profile whose values are not strings.
std::optional<std::string> LoadProfiles(const std::string& path, std::map<std::string, Profile>& out);
std::optional<std::string> SaveProfiles(const std::string& path, const std::map<std::string, Profile>& profiles);

}  // namespace flovyn::cli
