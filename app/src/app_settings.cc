#include "app_settings.h"

#include "flovyn/runtime/process_settings.h"

namespace flovyn::app {

using config::Type;

namespace {

void AddConsoleSettings(config::Schema& s) {
  s.Add({.key = "database_url",
         .type = Type::kSecretUrl,
         .required = true,
         .description = "the console's own PostgreSQL"});
  s.Add({.key = "backend_url",
         .required = true,
         .description = "flovyn-server HTTP endpoint (http://flovyn-server:8000)"});
  s.Add({.key = "better_auth_secret",
         .type = Type::kSecret,
         .required = true,
         .description = "signs session cookies and CSRF tokens; the key sealing the token-signing keys is derived "
                        "from it",
         .min_length = 32});
  s.Add({.key = "better_auth_trust_host",
         .type = Type::kBool,
         .default_value = "false",
         .description = "trust `X-Forwarded-Host`/`-Proto` (behind an ingress that sets them)"});
  s.Add({.key = "next_public_app_url",
         .required = true,
         .description = "public URL of the console; the `iss` of the tokens it signs"});
  s.Add({.key = "node_env",
         .default_value = "production",
         .description = "`production` makes cookies Secure",
         .choices = {"production", "development", "test"}});
  s.Add({.key = "port",
         .type = Type::kInt,
         .default_value = "3000",
         .description = "HTTP port",
         .min_value = 1,
         .max_value = 65535});
}

void AddSessionAndHashingSettings(config::Schema& s) {
  s.Add({.key = "session.ttl_hours",
         .type = Type::kInt,
         .default_value = "168",
         .description = "how long a sign-in lasts",
         .min_value = 1,
         .max_value = 8760});
  s.Add({.key = "token.ttl_secs",
         .type = Type::kInt,
         .default_value = "300",
         .description = "lifetime of the JWTs the console signs for the server",
         .min_value = 30,
         .max_value = 3600});
  s.Add({.key = "backend.timeout_ms",
         .type = Type::kInt,
         .default_value = "5000",
         .description = "deadline of each call to flovyn-server",
         .min_value = 100,
         .max_value = 60000});
  s.Add({.key = "auth.hash_threads",
         .type = Type::kInt,
         .default_value = "2",
         .description = "threads that hash and check passwords (argon2id, 19 MiB each)",
         .min_value = 1,
         .max_value = 64});
  s.Add({.key = "console.max_live_pages",
         .type = Type::kInt,
         .default_value = "200",
         .description = "workflow pages following their history live at once (each polls the server every second); "
                        "beyond it a page falls back to reloading",
         .min_value = 0,
         .max_value = 100000});
  s.Add({.key = "auth.hash_queue",
         .type = Type::kInt,
         .default_value = "8",
         .description = "password checks that may wait for a hashing thread; beyond it sign-in and sign-up answer "
                        "429 with Retry-After",
         .min_value = 0,
         .max_value = 1024});
}

}  // namespace

const config::Schema& Schema() {
  static const config::Schema schema = [] {
    config::Schema s("flovyn-app");
    AddConsoleSettings(s);
    runtime::AddProcessSettings(
        s,
        {.db_pool_size = 8, .http_max_body_bytes = 65536, .bind_address_description = "address the listener binds to"});
    runtime::AddTracingSettings(s, "flovyn-app");
    runtime::AddMetricsSettings(s, 9092);
    AddSessionAndHashingSettings(s);
    return s;
  }();
  return schema;
}

Settings Settings::From(const config::Values& v) {
  Settings s;
  s.database_url = v.String("database_url");
  s.backend_url = v.String("backend_url");
  while (!s.backend_url.empty() && s.backend_url.back() == '/') s.backend_url.pop_back();
  s.auth_secret = v.String("better_auth_secret");
  s.trust_host = v.Bool("better_auth_trust_host");
  s.public_url = v.String("next_public_app_url");
  while (!s.public_url.empty() && s.public_url.back() == '/') s.public_url.pop_back();
  s.node_env = v.String("node_env");
  s.port = static_cast<int>(v.Int("port"));
  s.metrics_enabled = v.Bool("metrics.enabled");
  s.metrics_port = static_cast<int>(v.Int("metrics.port"));
  s.session_ttl_hours = v.Int("session.ttl_hours");
  s.token_ttl_secs = v.Int("token.ttl_secs");
  s.backend_timeout_ms = v.Int("backend.timeout_ms");
  s.hash_threads = static_cast<int>(v.Int("auth.hash_threads"));
  s.hash_queue = static_cast<int>(v.Int("auth.hash_queue"));
  s.max_live_pages = static_cast<int>(v.Int("console.max_live_pages"));
  return s;
}

}  // namespace flovyn::app
