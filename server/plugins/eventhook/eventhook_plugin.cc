#include "eventhook_plugin.h"

#include <spdlog/spdlog.h>

#include "flovyn/crypto/crypto.h"
#include "flovyn/json/bounded.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> eventhook_migrations();
}

namespace flovyn::plugins {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr size_t kMaxStoredHeaders = 50, kMaxHeaderBytes = 8192;

// What of a delivery's headers is kept: not credentials or the signature itself.
json KeptHeaders(const Request& req, const Verifier& v) {
  std::string secret_header;
  for (char c : v.header) secret_header += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  json out = json::object();
  size_t bytes = 0;
  for (const auto& [name, value] : req.headers) {
    if (name == "authorization" || name == "cookie" || name == "proxy-authorization" || name == secret_header ||
        out.size() >= kMaxStoredHeaders) {
      continue;
    }
    if (bytes + name.size() + value.size() > kMaxHeaderBytes) continue;
    bytes += name.size() + value.size();
    if (!out.contains(name)) out[name] = value;
  }
  return out;
}

Response Json(int status, const json& body) { return engine::Json(status, body); }

}  // namespace

bool SourceRates::Allow(const std::string& source, double per_second, double burst) {
  auto now = std::chrono::steady_clock::now();
  MutexLock l(mu_);
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_) {
      // Drop the buckets that have refilled (idle sources); they start full again anyway.
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        double t = b->second.tokens + b->second.per_second * std::chrono::duration<double>(now - b->second.at).count();
        b = t >= b->second.burst ? buckets_.erase(b) : std::next(b);
      }
      if (buckets_.size() >= max_) return false;
    }
    it = buckets_.emplace(source, Bucket{burst, now, per_second, burst}).first;
  }
  Bucket& b = it->second;
  b.per_second = per_second;
  b.burst = burst;
  b.tokens = std::min(burst, b.tokens + per_second * std::chrono::duration<double>(now - b.at).count());
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

size_t SourceRates::size() const {
  MutexLock l(mu_);
  return buckets_.size();
}

void AddEventhookSettings(config::Schema& s) {
  s.Add({.key = "eventhook.secret_key",
         .type = config::Type::kSecret,
         .description = "key that seals event sources' HMAC secrets and hashes their API keys (WORKER_TOKEN_SECRET "
                        "when unset); changing it invalidates every source's secret",
         .min_length = 32});
  s.Add({.key = "eventhook.workers",
         .type = config::Type::kInt,
         .default_value = "2",
         .description = "threads per replica that process received events",
         .min_value = 1,
         .max_value = 64});
  s.Add({.key = "eventhook.max_attempts",
         .type = config::Type::kInt,
         .default_value = "5",
         .description = "processing attempts of an event before it is marked FAILED (retries back off from 1 s)",
         .min_value = 1,
         .max_value = 100});
  s.Add({.key = "eventhook.max_sources_per_tenant",
         .type = config::Type::kInt,
         .default_value = "100",
         .description = "event sources one tenant may have; beyond it creating one answers 429",
         .min_value = 0,
         .max_value = 100000});
}

std::vector<migrate::Migration> EventhookPlugin::migrations() const { return generated::eventhook_migrations(); }

Status EventhookPlugin::Start(const runtime::Context& ctx) {
  auto* engine = ctx.services.Find<engine::Store>();
  rest_ = ctx.services.Find<engine::RestContext>();
  if (engine == nullptr || rest_ == nullptr) {
    return FailedPrecondition("the eventhook plugin needs the engine, started before it");
  }
  std::string secret = ctx.config.String("eventhook.secret_key");
  if (secret.empty()) secret = ctx.config.String("worker_token_secret");
  if (!secret.empty()) {
    seal_key_ = crypto::Hkdf(secret, "flovyn-eventhook", "seal", 32);
    hash_key_ = crypto::Hkdf(secret, "flovyn-eventhook", "credential-hash", 32);
  }
  max_sources_ = ctx.config.Int("eventhook.max_sources_per_tenant");
  store_ = std::make_unique<EventhookStore>(ctx.pool);
  metrics_ = std::make_unique<EventhookMetrics>(ctx.metrics);
  ProcessorOptions o;
  o.workers = static_cast<int>(ctx.config.Int("eventhook.workers"));
  o.max_attempts = static_cast<int>(ctx.config.Int("eventhook.max_attempts"));
  processor_ = std::make_unique<EventProcessor>(*store_, *engine, metrics_.get(), o);
  processor_->Start();
  return Status::Ok();
}

void EventhookPlugin::Stop() {
  if (processor_) processor_->Stop();
}

StatusOr<std::pair<std::string, std::string>> EventhookPlugin::NewSecret(const std::string& tenant, const Verifier& v,
                                                                         const json& body) {
  if (v.type == Verifier::Type::kNone) return std::make_pair(std::string(), std::string());
  if (seal_key_.empty()) {
    return FailedPrecondition("sources with secrets need EVENTHOOK__SECRET_KEY (or WORKER_TOKEN_SECRET) to be set");
  }
  auto given = engine::StringField(body, "secret");
  if (!given.ok()) return given.status();
  std::string secret = given->value_or("whk_" + crypto::RandomToken(24));
  if (secret.size() < 8 || secret.size() > 512) return InvalidArgument("'secret' must be 8 to 512 characters");
  if (v.type == Verifier::Type::kHmac) {
    return std::make_pair(crypto::Base64UrlEncode(crypto::Seal(seal_key_, secret, tenant)), secret);
  }
  std::string credential = secret;
  if (v.type == Verifier::Type::kBasic) {
    auto user = engine::StringField(body, "username");
    if (!user.ok()) return user.status();
    if (!*user || (*user)->empty() || (*user)->find(':') != std::string::npos || (*user)->size() > 200) {
      return InvalidArgument("a basic verifier needs a 'username' (no ':')");
    }
    credential = **user + ":" + secret;
  }
  return std::make_pair(CredentialHash(hash_key_, credential), secret);
}

StatusOr<std::string> EventhookPlugin::HmacKey(const Source& s) const {
  auto box = crypto::Base64UrlDecode(s.secret);
  std::optional<std::string> key;
  if (box && !seal_key_.empty()) key = crypto::Open(seal_key_, *box, s.tenant_id);
  if (!key)
    return Status(StatusCode::kUnauthenticated, "the source's secret cannot be opened (was the server's key changed?)");
  return *key;
}

Response EventhookPlugin::Ingest(const Request& req) {
  auto tenant = rest_->tenancy().IdForSlug(req.path_params.at("tenant"));
  if (!tenant.ok()) return http::ErrorResponse(NotFound("no such event source"));
  auto source = store_->SourceBySlug(*tenant, req.path_params.at("source"));
  if (!source.ok()) return http::ErrorResponse(source.status());
  if (!*source || !(*source)->spec.enabled) return http::ErrorResponse(NotFound("no such event source"));
  const Source& s = **source;
  std::string label = req.path_params.at("tenant") + "/" + s.spec.slug;
  metrics_->Count(label, "received");
  if (req.body.size() > static_cast<size_t>(s.spec.max_body_bytes)) {
    metrics_->Count(label, "limited");
    return http::ErrorResponse(Status(StatusCode::kResourceExhausted, "the body is " + std::to_string(req.body.size()) +
                                                                          " bytes, over the source's maxBodyBytes (" +
                                                                          std::to_string(s.spec.max_body_bytes) + ")"))
        .With("X-Flovyn-Limit", "maxBodyBytes");
  }
  if (!rates_.Allow(s.id, s.spec.rate_per_second, s.spec.burst)) {
    metrics_->Count(label, "limited");
    return http::ErrorResponse(
               ResourceExhausted("over the source's ratePerSecond (" + std::to_string(s.spec.rate_per_second) + ")"))
        .With("Retry-After", "1");
  }
  std::string key;
  if (s.spec.verifier.type == Verifier::Type::kHmac) {
    auto k = HmacKey(s);
    if (!k.ok()) return http::ErrorResponse(k.status());
    key = *k;
  } else {
    key = s.secret;
  }
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  if (Status v = Verify(s.spec.verifier, key, hash_key_, req.headers, req.body, now_s.count()); !v.ok()) {
    metrics_->Count(label, "rejected");
    if (Status c = store_->CountRejected(s.id); !c.ok()) spdlog::warn("eventhook: {}", c.message());
    return http::ErrorResponse(v);
  }
  metrics_->Count(label, "verified");
  InboundEvent e;
  e.headers = req.headers;
  auto parsed = json_input::Parse(req.body, "the event body");
  e.body = parsed.ok() ? *parsed : json(nullptr);
  std::optional<std::string> dedup, type;
  for (const auto& path : s.spec.idempotency_paths) {
    if ((dedup = ResolveText(e, path))) break;
  }
  if (s.spec.event_type_path) type = ResolveText(e, *s.spec.event_type_path);
  if (dedup && dedup->size() > 500) dedup = crypto::Sha256Hex(*dedup);
  if (type && type->size() > 200) type->resize(200);
  auto stored = store_->InsertEvent(s, dedup, type, KeptHeaders(req, s.spec.verifier), req.body);
  if (!stored.ok()) return http::ErrorResponse(stored.status());
  if (!stored->second) {
    metrics_->Count(label, "duplicate");
    return Json(200, {{"id", stored->first}, {"duplicate", true}});
  }
  processor_->Wake();
  return Json(202, {{"id", stored->first}, {"status", "PENDING"}});
}

}  // namespace flovyn::plugins
