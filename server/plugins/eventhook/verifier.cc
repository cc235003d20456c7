#include <charconv>

#include "event_rules.h"

namespace flovyn::plugins {

using nlohmann::json;

namespace {

const char* DigestName(crypto::Digest d) {
  switch (d) {
    case crypto::Digest::kSha1:
      return "sha1";
    case crypto::Digest::kSha256:
      return "sha256";
    case crypto::Digest::kSha512:
      return "sha512";
  }
  return "sha256";
}

std::string Encode(const Verifier& v, std::string_view raw) {
  return v.encoding == "base64" ? crypto::Base64Encode(raw) : crypto::Hex(raw);
}

Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }

// The timestamp a signed delivery carries must be within the tolerance of now (replays of old
// deliveries are refused even with a valid signature).
Status Fresh(std::string_view ts, const Verifier& v, int64_t now_s) {
  int64_t t = 0;
  auto [end, err] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
  if (ts.empty() || err != std::errc() || end != ts.data() + ts.size())
    return Unauthenticated("the signature's timestamp is missing or not a number");
  if (t < now_s - v.tolerance_seconds || t > now_s + v.tolerance_seconds) {
    return Unauthenticated("the signature's timestamp is outside the tolerance of " +
                           std::to_string(v.tolerance_seconds) + " s");
  }
  return Status::Ok();
}

Status VerifyStripe(const Verifier& v, std::string_view secret, std::string_view header, std::string_view body,
                    int64_t now_s) {
  // "t=1700000000,v1=hex,v1=hex,v0=..." : any v1 may match (during a secret rotation there are two).
  std::string_view ts;
  std::vector<std::string_view> sigs;
  for (std::string_view part : SplitText(header, ',')) {
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.rfind("t=", 0) == 0) ts = part.substr(2);
    if (part.rfind("v1=", 0) == 0) sigs.push_back(part.substr(3));
  }
  if (ts.empty() || sigs.empty()) return Unauthenticated("the " + v.header + " header has no t= and v1= parts");
  if (Status s = Fresh(ts, v, now_s); !s.ok()) return s;
  std::string expected = crypto::Hex(crypto::Hmac(v.digest, secret, std::string(ts) + "." + std::string(body)));
  bool ok = false;
  for (auto sig : sigs) ok = crypto::ConstantTimeEqual(expected, sig) || ok;
  return ok ? Status::Ok() : Unauthenticated("the signature does not match");
}

Status VerifyHmac(const Verifier& v, std::string_view secret, const std::vector<std::pair<std::string, std::string>>& h,
                  std::string_view body, int64_t now_s) {
  std::string_view header = FindHeader(h, v.header);
  if (header.empty()) return Unauthenticated("the " + v.header + " header is missing");
  if (v.scheme == "stripe") return VerifyStripe(v, secret, header, body, now_s);
  std::string signed_payload(body);
  if (v.scheme == "slack") {
    std::string_view ts = FindHeader(h, v.timestamp_header);
    if (Status s = Fresh(ts, v, now_s); !s.ok()) return s;
    signed_payload = "v0:" + std::string(ts) + ":" + std::string(body);
  }
  std::string expected = v.prefix + Encode(v, crypto::Hmac(v.digest, secret, signed_payload));
  return crypto::ConstantTimeEqual(expected, header) ? Status::Ok() : Unauthenticated("the signature does not match");
}

Status ReadHmac(const json& spec, Verifier& v) {
  v.scheme = spec.value("scheme", "plain");
  if (v.scheme == "github") {
    v.header = "X-Hub-Signature-256";
    v.prefix = "sha256=";
    v.scheme = "plain";
  } else if (v.scheme == "stripe") {
    v.header = "Stripe-Signature";
  } else if (v.scheme == "slack") {
    v.header = "X-Slack-Signature";
    v.timestamp_header = "X-Slack-Request-Timestamp";
    v.prefix = "v0=";
  } else if (v.scheme != "plain") {
    return InvalidArgument("an hmac verifier's 'scheme' is one of github, stripe, slack, plain");
  }
  v.header = spec.value("header", v.header);
  v.prefix = spec.value("prefix", v.prefix);
  v.encoding = spec.value("encoding", v.encoding);
  std::string algorithm = spec.value("algorithm", "sha256");
  if (algorithm == "sha1") {
    v.digest = crypto::Digest::kSha1;
  } else if (algorithm == "sha512") {
    v.digest = crypto::Digest::kSha512;
  } else if (algorithm != "sha256") {
    return InvalidArgument("an hmac verifier's 'algorithm' is one of sha1, sha256, sha512");
  }
  if (v.encoding != "hex" && v.encoding != "base64") return InvalidArgument("'encoding' is hex or base64");
  if (v.header.empty() || v.header.size() > 100) return InvalidArgument("an hmac verifier needs a 'header'");
  if (v.prefix.size() > 40) return InvalidArgument("'prefix' is at most 40 characters");
  v.tolerance_seconds = spec.value("toleranceSeconds", int64_t{300});
  if (v.tolerance_seconds < 1 || v.tolerance_seconds > 86400) {
    return InvalidArgument("'toleranceSeconds' must be between 1 and 86400");
  }
  return Status::Ok();
}

}  // namespace

json Verifier::ToJson() const {
  switch (type) {
    case Type::kNone:
      return {{"type", "none"}};
    case Type::kBasic:
      return {{"type", "basic"}};
    case Type::kApiKey:
      return {{"type", "api_key"}, {"header", header}};
    case Type::kHmac:
      return {{"type", "hmac"},
              {"scheme", scheme},
              {"header", header},
              {"algorithm", DigestName(digest)},
              {"prefix", prefix},
              {"encoding", encoding},
              {"timestampHeader", timestamp_header},
              {"toleranceSeconds", tolerance_seconds}};
  }
  return nullptr;
}

StatusOr<Verifier> ParseVerifier(const json& spec) {
  Verifier v;
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return InvalidArgument("'verifier' needs a 'type': hmac, api_key, basic or none");
  }
  try {
    std::string type = spec["type"];
    if (type == "none") return v;
    if (type == "basic") {
      v.type = Verifier::Type::kBasic;
      return v;
    }
    if (type == "api_key") {
      v.type = Verifier::Type::kApiKey;
      v.header = spec.value("header", "X-Api-Key");
      if (v.header.empty() || v.header.size() > 100) return InvalidArgument("an api_key verifier needs a 'header'");
      return v;
    }
    if (type != "hmac") return InvalidArgument("'verifier.type' is one of hmac, api_key, basic, none");
    v.type = Verifier::Type::kHmac;
    if (Status s = ReadHmac(spec, v); !s.ok()) return s;
  } catch (const json::exception&) {
    return InvalidArgument("a 'verifier' field has the wrong type");
  }
  return v;
}

std::string CredentialHash(std::string_view hash_key, std::string_view credential) {
  return crypto::Hex(crypto::HmacSha256(hash_key, credential));
}

Status Verify(const Verifier& v, std::string_view secret, std::string_view hash_key,
              const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body, int64_t now_s) {
  switch (v.type) {
    case Verifier::Type::kNone:
      return Status::Ok();
    case Verifier::Type::kHmac:
      return VerifyHmac(v, secret, headers, body, now_s);
    case Verifier::Type::kApiKey: {
      std::string_view key = FindHeader(headers, v.header);
      if (key.empty()) return Unauthenticated("the " + v.header + " header is missing");
      return crypto::ConstantTimeEqual(CredentialHash(hash_key, key), secret) ? Status::Ok()
                                                                              : Unauthenticated("the key is not valid");
    }
    case Verifier::Type::kBasic: {
      std::string_view auth = FindHeader(headers, "authorization");
      if (auth.rfind("Basic ", 0) != 0) return Unauthenticated("HTTP basic credentials are required");
      std::string b64(auth.substr(6));
      for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
      while (!b64.empty() && b64.back() == '=') b64.pop_back();
      auto decoded = crypto::Base64UrlDecode(b64);
      if (!decoded) return Unauthenticated("the basic credentials are not base64");
      return crypto::ConstantTimeEqual(CredentialHash(hash_key, *decoded), secret)
                 ? Status::Ok()
                 : Unauthenticated("the credentials are not valid");
    }
  }
  return Unauthenticated("unknown verifier");
}

}  // namespace flovyn::plugins
