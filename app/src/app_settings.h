// Every setting of flovyn-app, declared once: loading, --print-config and docs/configuration.md
// are produced from this schema.
#pragma once

#include <string>

#include "flovyn/config/config.h"

namespace flovyn::app {

const config::Schema& Schema();

struct Settings {
  std::string database_url;
  std::string backend_url;
  std::string auth_secret;
  bool trust_host = false;
  std::string public_url;
  std::string node_env;
  int port = 3000;
  bool metrics_enabled = false;
  int metrics_port = 9092;
  long session_ttl_hours = 168;
  long token_ttl_secs = 300;
  long backend_timeout_ms = 5000;
  int hash_threads = 2;
  int hash_queue = 8;
  int max_live_pages = 200;

  bool production() const { return node_env == "production"; }
  static Settings From(const config::Values& v);
};

}  // namespace flovyn::app
