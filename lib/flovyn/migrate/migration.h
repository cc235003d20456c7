// One SQL migration compiled into the binary (see cmake/EmbedMigrations.cmake).
#pragma once

#include <string>
#include <vector>

namespace flovyn::migrate {

struct Migration {
  std::string component;  // "core" or a plugin name
  int version;
  std::string name;
  std::string sql;
};

}  // namespace flovyn::migrate
