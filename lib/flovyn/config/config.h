// Declarative configuration: each program declares its settings once (key, type, default,
// requirement, description); loading, validation, --print-config and the generated
// documentation all read that one declaration. Precedence: defaults < TOML file < environment
// < command-line flags. Every error found is reported together.
// Schema and Values are immutable after loading and safe to read from any thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flovyn/core/status.h"

namespace flovyn::config {

enum class Type {
  kString,
  kInt,
  kBool,
  kSecret,      // never printed, logged or returned
  kSecretUrl,   // a URL whose password is redacted when printed
  kSecretJson,  // structured value (TOML table/array, or JSON text in the environment); never printed
};

enum class Source { kDefault, kFile, kEnvironment, kFlag };
const char* SourceName(Source s);

struct Setting {
  std::string key;  // dotted, lower case: "nats.url"
  Type type = Type::kString;
  std::optional<std::string> default_value;
  bool required = false;
  std::string description;
  std::vector<std::string> env_aliases;  // extra variable names, lower precedence than the main one
  std::vector<std::string> choices;      // allowed values (strings), empty = any
  long min_value = 0;                    // for kInt
  long max_value = 0;                    // for kInt; 0 = unbounded
  std::string required_when;             // bool key that makes this required when true
  size_t min_length = 0;                 // for strings and secrets: shortest accepted value
};

// "nats.url" -> "NATS__URL"; "database_url" -> "DATABASE_URL".
std::string EnvNameFor(const std::string& key);

class Values;

class Schema {
 public:
  explicit Schema(std::string program) : program_(std::move(program)) {}
  Schema& Add(Setting s);
  const std::vector<Setting>& settings() const { return settings_; }
  const Setting* Find(const std::string& key) const;
  const std::string& program() const { return program_; }
  // Markdown table of every setting (for docs/configuration.md).
  std::string ToMarkdown() const;

 private:
  std::string program_;
  std::vector<Setting> settings_;
};

struct LoadInput {
  std::vector<std::string> flags;  // "--key=value" / "--key value" / "--config f"
  std::map<std::string, std::string> environment;
};

class Values {
 public:
  const std::string& String(const std::string& key) const;
  long Int(const std::string& key) const;
  bool Bool(const std::string& key) const;
  bool Has(const std::string& key) const;
  Source SourceOf(const std::string& key) const;
  // Effective configuration as TOML-like text, secrets redacted.
  std::string Print() const;

 private:
  friend StatusOr<Values> Load(const Schema&, const LoadInput&);
  const Schema* schema_ = nullptr;
  struct Entry {
    std::string value;
    Source source = Source::kDefault;
  };
  std::map<std::string, Entry> values_;
};

// Parses and validates. The error message lists every problem, one per line.
StatusOr<Values> Load(const Schema& schema, const LoadInput& input);

// The process environment as a map.
std::map<std::string, std::string> ProcessEnvironment();

// Hides credentials: "postgres://u:secret@h/db" -> "postgres://u:***@h/db", a NATS token in the
// userinfo, password-like query parameters (?password=), and libpq's keyword/value strings
// (password = x, quoted or not).
std::string RedactUrl(const std::string& url);
// Whether a setting's last key segment names a credential (password, secret, token, key, ...).
bool IsPasswordLikeKey(std::string_view key);

}  // namespace flovyn::config
