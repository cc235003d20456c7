#include "identity.h"

#include <argon2.h>

#include <algorithm>
#include <cmath>
#include <set>

#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"
#include "flovyn/crypto/crypto.h"
#include "flovyn/db/sqlstate.h"
#include "flovyn/db/transaction.h"

namespace flovyn::app {

using nlohmann::json;

namespace {

// OWASP's recommended argon2id parameters: 19 MiB, 2 passes, 1 lane.
constexpr uint32_t kTimeCost = 2, kMemoryKiB = 19 * 1024, kLanes = 1, kHashLen = 32, kSaltLen = 16;
constexpr int64_t kKeyRingLock = 0x466c6f76796e0102;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

User UserFrom(const db::Result& r, int row, int col) {
  return {std::string(r.Get(row, col)), std::string(r.Get(row, col + 1)), std::string(r.Get(row, col + 2))};
}

Org OrgFrom(const db::Result& r, int row, int col) {
  return {std::string(r.Get(row, col)), std::string(r.Get(row, col + 1)), std::string(r.Get(row, col + 2)),
          std::string(r.Get(row, col + 3)), r.Get(row, col + 4) == "t"};
}

std::string SealingKey(std::string_view secret) {
  return crypto::Hkdf(secret, "flovyn-app", "flovyn-app signing-key sealing v1", 32);
}

}  // namespace

std::string HashPassword(std::string_view password) {
  std::string salt = crypto::RandomBytes(kSaltLen);
  size_t len = argon2_encodedlen(kTimeCost, kMemoryKiB, kLanes, kSaltLen, kHashLen, Argon2_id);
  std::string out(len, '\0');
  int rc = argon2id_hash_encoded(kTimeCost, kMemoryKiB, kLanes, password.data(), password.size(), salt.data(),
                                 salt.size(), kHashLen, out.data(), out.size());
  if (rc != ARGON2_OK) throw std::runtime_error(std::string("argon2id: ") + argon2_error_message(rc));
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool VerifyPassword(const std::string& encoded, std::string_view password) {
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

std::string PasswordProblem(std::string_view password, std::string_view email) {
  if (password.size() < 10) return "Choose a password of at least 10 characters.";
  if (password.size() > 1000) return "Choose a password of at most 1000 characters.";
  std::set<char> distinct(password.begin(), password.end());
  if (distinct.size() < 5) return "Choose a password with at least 5 different characters.";
  if (password.find_first_not_of(" \t") == std::string_view::npos) return "A password cannot be only spaces.";
  if (Lower(std::string(password)) == Lower(std::string(email))) return "A password cannot be your email address.";
  return "";
}

std::string SlugFrom(std::string_view name) {
  std::string out;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= 40) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

bool ValidSlug(std::string_view slug) {
  if (slug.size() < 3 || slug.size() > 40 || slug.front() == '-' || slug.back() == '-') return false;
  return std::all_of(slug.begin(), slug.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// ---------------------------------------------------------------- cookies

std::string SessionCookies::Wrap(const std::string& token) const {
  return token + "." + crypto::Base64UrlEncode(crypto::HmacSha256(secret_, "session|" + token));
}

std::optional<std::string> SessionCookies::Unwrap(std::string_view cookie) const {
  auto dot = cookie.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  std::string token(cookie.substr(0, dot));
  std::string expected = crypto::Base64UrlEncode(crypto::HmacSha256(secret_, "session|" + token));
  if (!crypto::ConstantTimeEqual(expected, cookie.substr(dot + 1))) return std::nullopt;
  return token;
}

std::string SessionCookies::AnonymousCsrf(std::string_view visitor) const {
  return crypto::Base64UrlEncode(crypto::HmacSha256(secret_, "csrf|" + std::string(visitor)));
}

// ---------------------------------------------------------------- identity

Identity::Identity(db::Pool& pool, std::string secret, std::chrono::hours session_ttl, PasswordPool& passwords,
                   SignInThrottle throttle)
    : pool_(pool),
      cookies_(std::move(secret)),
      session_ttl_(session_ttl),
      passwords_(passwords),
      throttle_(throttle),
      dummy_hash_(HashPassword(crypto::RandomToken(16))) {}

StatusOr<std::pair<std::string, Session>> Identity::NewSession(const User& u, const Org& o) {
  std::string token = crypto::RandomToken(32);
  std::string csrf = crypto::RandomToken(32);
  auto r = pool_.Query(
      "INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, expires_at) "
      "VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 hour')",
      {crypto::Sha256Hex(token), u.id, o.id, csrf, std::to_string(session_ttl_.count())});
  if (!r.ok()) return r.status();
  // Expired sessions are removed as new ones are made.
  (void)pool_.Query("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'");
  return std::make_pair(cookies_.Wrap(token), Session{u, o, csrf});
}

StatusOr<std::pair<std::string, Session>> Identity::SignUp(const std::string& email, const std::string& name,
                                                           const std::string& password, const std::string& org_name,
                                                           const std::string& org_slug,
                                                           const std::function<Status(const Session&)>& before_commit) {
  auto hashed = passwords_.Hash(password);
  if (!hashed.ok()) return hashed.status();
  const std::string& hash = *hashed;
  User user;
  Org org;
  Status s = db::InTransaction(pool_, [&](db::Tx& tx) -> Status {
    auto u = tx.Exec("INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id, email, name",
                     {email, name, hash});
    if (!u.ok()) {
      // Worded so that it does not confirm that the address has an account.
      if (u.status().code() == StatusCode::kAlreadyExists) {
        return {StatusCode::kAlreadyExists,
                "An account could not be created with these details. If you already have one, sign in."};
      }
      return u.status();
    }
    user = UserFrom(*u, 0, 0);
    auto o = tx.Exec(
        "INSERT INTO organizations (slug, name) VALUES ($1, $2) "
        "RETURNING id, slug, name, 'owner', tenant_ready",
        {org_slug, org_name});
    if (!o.ok()) {
      if (o.status().code() == StatusCode::kAlreadyExists) {
        return {StatusCode::kAlreadyExists, "the organisation slug '" + org_slug + "' is taken"};
      }
      return o.status();
    }
    org = OrgFrom(*o, 0, 0);
    auto m = tx.Exec("INSERT INTO members (org_id, user_id, role) VALUES ($1, $2, 'owner')", {org.id, user.id});
    if (!m.ok()) return m.status();
    Status ready = before_commit(Session{user, org, ""});
    if (!ready.ok()) return ready;
    org.tenant_ready = true;
    return tx.Exec("UPDATE organizations SET tenant_ready = true WHERE id = $1", {org.id}).status();
  });
  if (!s.ok()) return s;
  return NewSession(user, org);
}

namespace {
// Seconds a key with `failures` must wait after its last failure: $free, $first and $max name the
// statement's parameters for the free attempts, the first wait and the longest wait.
std::string WaitExpr(const char* free, const char* first, const char* max) {
  return std::string("least(") + first + "::double precision * power(2, greatest(t.failures - " + free +
         "::int, 0)), " + max + "::double precision)";
}
}  // namespace

Status Identity::Reserve(const std::string& key, int free_attempts) {
  PurgeExpired();
  // One statement: the attempt is counted unless the key must still wait, so concurrent guesses
  // each take their own count and none slips past the free attempts.
  auto r = pool_.Query(
      "INSERT INTO sign_in_throttle AS t (key, failures, last_at) VALUES ($1, 1, now()) "
      "ON CONFLICT (key) DO UPDATE SET "
      "failures = CASE WHEN t.last_at < now() - $2::bigint * interval '1 second' THEN 1 ELSE t.failures + 1 END, "
      "last_at = now() "
      "WHERE t.last_at < now() - $2::bigint * interval '1 second' OR t.failures < $3::int "
      "OR t.last_at + " +
          WaitExpr("$3", "$4", "$5") +
          " * interval '1 second' <= now() "
          "RETURNING failures",
      {key, std::to_string(throttle_.forget_after.count()), std::to_string(free_attempts),
       std::to_string(throttle_.first_wait.count()), std::to_string(throttle_.max_wait.count())});
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return Status::Ok();
  auto w = pool_.Query("SELECT greatest(1, ceil(extract(epoch from t.last_at + " + WaitExpr("$2", "$3", "$4") +
                           " * interval '1 second' - now())))::bigint FROM sign_in_throttle t WHERE key = $1",
                       {key, std::to_string(free_attempts), std::to_string(throttle_.first_wait.count()),
                        std::to_string(throttle_.max_wait.count())});
  if (!w.ok()) return w.status();
  int64_t wait = w->rows() == 1 ? w->GetInt(0, 0) : 1;
  return Status(StatusCode::kResourceExhausted,
                "too many failed sign-ins; try again in " + std::to_string(wait) + " s");
}

void Identity::Release(const std::string& key) {
  (void)pool_.Query("UPDATE sign_in_throttle SET failures = greatest(failures - 1, 0) WHERE key = $1", {key});
}

void Identity::PurgeExpired() {
  // Rows past every wait and the forgetting time count for nothing: removed at most once a minute,
  // so the table holds only the last window's keys.
  auto now = std::chrono::steady_clock::now();
  {
    MutexLock l(purge_mu_);
    if (now - last_purge_ < std::chrono::minutes(1)) return;
    last_purge_ = now;
  }
  (void)pool_.Query("DELETE FROM sign_in_throttle WHERE last_at < now() - $1::bigint * interval '1 second'",
                    {std::to_string(throttle_.forget_after.count() + throttle_.max_wait.count())});
}

StatusOr<std::pair<std::string, Session>> Identity::SignIn(const std::string& email, const std::string& password,
                                                           const std::string& client) {
  std::string key = Lower(email);
  std::string pair_key = "pair:" + key + "|" + client, address_key = "addr:" + client;
  // The address first: once it must wait, its attempts store nothing more, whatever the email.
  if (Status s = Reserve(address_key, throttle_.address_free_attempts); !s.ok()) return s;
  if (Status s = Reserve(pair_key, throttle_.free_attempts); !s.ok()) return s;
  auto u = pool_.Query(
      "SELECT u.id, u.email, u.name, u.password_hash, o.id, o.slug, o.name, m.role, o.tenant_ready "
      "FROM users u JOIN members m ON m.user_id = u.id JOIN organizations o ON o.id = m.org_id "
      "WHERE lower(u.email) = $1 ORDER BY m.created_at LIMIT 1",
      {key});
  if (!u.ok()) return u.status();
  // An unknown email is checked against a dummy hash, so its answer takes as long as a wrong password.
  auto good = passwords_.Verify(u->rows() == 1 ? std::string(u->Get(0, 3)) : dummy_hash_, password);
  if (!good.ok()) {
    // Refused before any password was checked (hashing is saturated): not a failure, so the
    // attempts counted above are given back, or a flood would lock users out through us.
    Release(address_key);
    Release(pair_key);
    return good.status();
  }
  if (!*good || u->rows() != 1) return Status(StatusCode::kUnauthenticated, "wrong email or password");
  // The right password: this pair starts again, and the address gets its attempt back.
  (void)pool_.Query("DELETE FROM sign_in_throttle WHERE key = $1", {pair_key});
  Release(address_key);
  User user = UserFrom(*u, 0, 0);
  Org org = OrgFrom(*u, 0, 4);
  return NewSession(user, org);
}

StatusOr<std::optional<Session>> Identity::FindSession(std::string_view cookie) {
  auto token = cookies_.Unwrap(cookie);
  if (!token) return std::optional<Session>();
  auto r = pool_.Query(
      "SELECT u.id, u.email, u.name, o.id, o.slug, o.name, m.role, o.tenant_ready, s.csrf_token "
      "FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = s.org_id "
      "JOIN members m ON m.org_id = s.org_id AND m.user_id = s.user_id "
      "WHERE s.token_hash = $1 AND s.expires_at > now()",
      {crypto::Sha256Hex(*token)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<Session>();
  return std::optional<Session>(Session{UserFrom(*r, 0, 0), OrgFrom(*r, 0, 3), std::string(r->Get(0, 8))});
}

Status Identity::EndSession(std::string_view cookie) {
  auto token = cookies_.Unwrap(cookie);
  if (!token) return Status::Ok();
  return pool_.Query("DELETE FROM sessions WHERE token_hash = $1", {crypto::Sha256Hex(*token)}).status();
}

Status Identity::MarkTenantReady(const std::string& org_id) {
  return pool_.Query("UPDATE organizations SET tenant_ready = true WHERE id = $1", {org_id}).status();
}

// ---------------------------------------------------------------- API keys

StatusOr<std::pair<ApiKeyInfo, std::string>> Identity::CreateApiKey(const Session& s, const std::string& name) {
  std::string key = "flk_" + crypto::RandomToken(32);
  auto r = pool_.Query(
      "INSERT INTO api_keys (org_id, user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5) "
      "RETURNING id, created_at::text",
      {s.org.id, s.user.id, name, key.substr(0, 12), crypto::Sha256Hex(key)});
  if (!r.ok()) return r.status();
  ApiKeyInfo info{std::string(r->Get(0, 0)), name, key.substr(0, 12), std::string(r->Get(0, 1)), {}, {}};
  return std::make_pair(info, key);
}

StatusOr<std::vector<ApiKeyInfo>> Identity::ListApiKeys(const Session& s) {
  auto r = pool_.Query(
      "SELECT id, name, prefix, created_at::text, last_used_at::text, revoked_at::text FROM api_keys "
      "WHERE org_id = $1 ORDER BY created_at DESC",
      {s.org.id});
  if (!r.ok()) return r.status();
  std::vector<ApiKeyInfo> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back({std::string(r->Get(i, 0)), std::string(r->Get(i, 1)), std::string(r->Get(i, 2)),
                   std::string(r->Get(i, 3)), r->GetOpt(i, 4), r->GetOpt(i, 5)});
  }
  return out;
}

Status Identity::RevokeApiKey(const Session& s, const std::string& id) {
  auto r =
      pool_.Query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id::text = $1 AND org_id = $2",
                  {id, s.org.id});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) return NotFound("API key not found");
  return Status::Ok();
}

StatusOr<std::optional<ValidKey>> Identity::ValidateApiKey(const std::string& key) {
  if (key.rfind("flk_", 0) != 0 || key.size() > 200) return std::optional<ValidKey>();
  auto r = pool_.Query(
      "UPDATE api_keys k SET last_used_at = now() FROM users u, organizations o, members m "
      "WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = k.user_id AND o.id = k.org_id "
      "AND m.org_id = k.org_id AND m.user_id = k.user_id "
      "RETURNING k.id, m.role, u.id, u.email, u.name, o.id, o.slug, o.name, m.role, o.tenant_ready",
      {crypto::Sha256Hex(key)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<ValidKey>();
  return std::optional<ValidKey>(
      ValidKey{std::string(r->Get(0, 0)), std::string(r->Get(0, 1)), UserFrom(*r, 0, 2), OrgFrom(*r, 0, 5)});
}

// ---------------------------------------------------------------- signing keys

StatusOr<jwt::SigningKey> UnsealSigningKey(std::string_view secret, const std::string& kid, const std::string& sealed) {
  auto box = crypto::Base64UrlDecode(sealed);
  if (!box) return Status(StatusCode::kInternal, "stored signing key is malformed");
  auto pem = crypto::Open(SealingKey(secret), *box, kid);
  if (!pem) return Status(StatusCode::kFailedPrecondition, "stored signing key does not open with this secret");
  return jwt::SigningKey::FromPem(kid, *pem);
}

KeyRing::KeyRing(db::Pool& pool, std::string_view secret) : pool_(pool), sealing_key_(SealingKey(secret)) {}

Status KeyRing::Load() {
  std::optional<jwt::SigningKey> active;
  json keys = json::array();
  Status s = db::InTransaction(pool_, [&](db::Tx& tx) -> Status {
    active.reset();
    keys = json::array();
    auto lock = tx.Exec("SELECT pg_advisory_xact_lock($1)", {std::to_string(kKeyRingLock)});
    if (!lock.ok()) return lock.status();
    auto r = tx.Exec(
        "SELECT kid, private_key, public_jwk::text FROM signing_keys WHERE retired_at IS NULL "
        "ORDER BY created_at DESC");
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      std::string kid(r->Get(i, 0));
      auto box = crypto::Base64UrlDecode(r->Get(i, 1));
      std::optional<std::string> pem = box ? crypto::Open(sealing_key_, *box, kid) : std::nullopt;
      if (!pem) {
        // Sealed under another secret (BETTER_AUTH_SECRET was rotated): retire it. Tokens it
        // signed stay verifiable while they live, since its public key remains published.
        spdlog::warn("signing key {} does not open with the current BETTER_AUTH_SECRET; retiring it", kid);
        auto u = tx.Exec("UPDATE signing_keys SET retired_at = now() WHERE kid = $1", {kid});
        if (!u.ok()) return u.status();
        keys.push_back(json::parse(r->Get(i, 2)));
        continue;
      }
      auto key = jwt::SigningKey::FromPem(kid, *pem);
      if (!key.ok()) return key.status();
      if (!active) active = *key;
      keys.push_back(json::parse(r->Get(i, 2)));
    }
    if (!active) {
      auto key = jwt::SigningKey::Generate(crypto::RandomToken(12));
      std::string sealed = crypto::Base64UrlEncode(crypto::Seal(sealing_key_, key.PrivatePem(), key.kid()));
      auto ins = tx.Exec("INSERT INTO signing_keys (kid, private_key, public_jwk) VALUES ($1, $2, $3::jsonb)",
                         {key.kid(), sealed, key.PublicJwk().dump()});
      if (!ins.ok()) return ins.status();
      keys.insert(keys.begin(), key.PublicJwk());
      active = key;
    }
    // Keys retired within the last day stay published for tokens still in flight.
    auto old = tx.Exec("SELECT public_jwk::text FROM signing_keys WHERE retired_at > now() - interval '1 day'");
    if (!old.ok()) return old.status();
    for (int i = 0; i < old->rows(); ++i) {
      json k = json::parse(old->Get(i, 0));
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  MutexLock l(mu_);
  active_ = active;
  jwks_ = {{"keys", keys}};
  return Status::Ok();
}

std::string KeyRing::Sign(const json& claims) const {
  MutexLock l(mu_);
  return active_->Sign(claims);
}

json KeyRing::Jwks() const {
  MutexLock l(mu_);
  return jwks_;
}

}  // namespace flovyn::app
