// What the eventhook plugin decides from a received event without touching the database: how a
// source authenticates a delivery (HMAC signatures as GitHub, Stripe and Slack send them, an API
// key in a header, HTTP basic, or nothing), where a value sits in the event ("header.x-github-event",
// "body.data.object.id", "body.items.0"), whether a route's conditions hold, and the input an
// action passes on.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flovyn/core/status.h"
#include "flovyn/crypto/crypto.h"
#include "flovyn/http/message.h"

namespace flovyn::plugins {

using Headers = http::HeaderList;
using http::FindHeader;
// The parts of `s` between `sep` (empty parts kept).
std::vector<std::string_view> SplitText(std::string_view s, char sep);

struct InboundEvent {
  std::string id, type;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  nlohmann::json body;                                       // null when the body is not JSON
  // The whole event as one JSON value (what an action passes when it maps nothing).
  nlohmann::json ToJson() const;
};

// "header.<name>" or "body[.key|.index]*"; INVALID_ARGUMENT names a path of another shape.
Status ValidatePath(const std::string& path);
// The value at `path`, or nullopt when it is absent.
std::optional<nlohmann::json> Resolve(const InboundEvent& e, std::string_view path);
// The value at `path` as text (strings as they are, numbers and the rest as JSON).
std::optional<std::string> ResolveText(const InboundEvent& e, std::string_view path);

struct Condition {
  enum class Op { kEquals, kIn, kExists, kPrefix };
  std::string path;
  Op op = Op::kEquals;
  nlohmann::json value;
};
// [{"path": ..., "op": "equals"|"in"|"exists"|"prefix", "value": ...}]
StatusOr<std::vector<Condition>> ParseConditions(const nlohmann::json& spec);
bool Holds(const std::vector<Condition>& conditions, const InboundEvent& e);

// An action's input: absent or null passes the whole event; a path string passes that value;
// an object maps each key to the value at its path (absent values become null).
Status ValidateInputMapping(const nlohmann::json& spec);
nlohmann::json MapInput(const nlohmann::json& spec, const InboundEvent& e);

struct Verifier {
  enum class Type { kHmac, kApiKey, kBasic, kNone };
  Type type = Type::kNone;
  std::string scheme = "plain";  // hmac: plain (GitHub and most), stripe, slack
  std::string header;            // where the signature or key arrives
  crypto::Digest digest = crypto::Digest::kSha256;
  std::string prefix;            // "sha256=" (GitHub), "v0=" (Slack)
  std::string encoding = "hex";  // or base64
  std::string timestamp_header;  // slack: X-Slack-Request-Timestamp
  int64_t tolerance_seconds = 300;
  nlohmann::json ToJson() const;
};
// {"type": "hmac", "scheme": "github"|"stripe"|"slack"|"plain", "header", "algorithm", "prefix",
//  "encoding", "toleranceSeconds"}, {"type": "api_key", "header"}, {"type": "basic"}, {"type": "none"}.
StatusOr<Verifier> ParseVerifier(const nlohmann::json& spec);

// Whether the delivery is authentic. `secret`: the HMAC key for hmac; for api_key and basic,
// the stored hash of the expected credential (CredentialHash). Compared in constant time.
// UNAUTHENTICATED with a message that names what was wrong but never the expected value.
Status Verify(const Verifier& v, std::string_view secret, std::string_view hash_key,
              const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body, int64_t now_s);
std::string CredentialHash(std::string_view hash_key, std::string_view credential);

}  // namespace flovyn::plugins
