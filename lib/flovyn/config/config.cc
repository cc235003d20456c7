#include "flovyn/config/config.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <toml.hpp>

extern char** environ;  // NOLINT

namespace flovyn::config {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<bool> ParseBool(const std::string& v) {
  std::string l = Lower(v);
  if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return false;
  return std::nullopt;
}

std::optional<long> ParseInt(const std::string& v) {
  if (v.empty()) return std::nullopt;
  size_t pos = 0;
  try {
    long n = std::stol(v, &pos);
    if (pos != v.size()) return std::nullopt;
    return n;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

nlohmann::json TomlToJson(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return v.as_boolean();
    case toml::value_t::integer:
      return v.as_integer();
    case toml::value_t::floating:
      return v.as_floating();
    case toml::value_t::string:
      return v.as_string().str;
    case toml::value_t::array: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : v.as_array()) a.push_back(TomlToJson(e));
      return a;
    }
    case toml::value_t::table: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, e] : v.as_table()) o[k] = TomlToJson(e);
      return o;
    }
    default:
      return toml::format(v);
  }
}

// Flattens a TOML table into dotted keys with string values.
void Flatten(const toml::value& v, const std::string& prefix, const Schema& schema,
             std::map<std::string, std::string>& out, std::vector<std::string>& errors) {
  for (const auto& [k, child] : v.as_table()) {
    std::string key = prefix;
    if (!key.empty()) key += '.';
    key += k;
    if (child.is_table() && schema.Find(key) == nullptr) {
      Flatten(child, key, schema, out, errors);
      continue;
    }
    if (schema.Find(key) == nullptr) {
      errors.push_back("config file: unknown setting '" + key + "'");
      continue;
    }
    if (schema.Find(key)->type == Type::kSecretJson) {
      out[key] = TomlToJson(child).dump();
      continue;
    }
    switch (child.type()) {
      case toml::value_t::string:
        out[key] = child.as_string().str;
        break;
      case toml::value_t::integer:
        out[key] = std::to_string(child.as_integer());
        break;
      case toml::value_t::boolean:
        out[key] = child.as_boolean() ? "true" : "false";
        break;
      case toml::value_t::floating:
        out[key] = std::to_string(child.as_floating());
        break;
      default:
        errors.push_back("config file: '" + key + "' must be a string, number or boolean");
    }
  }
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

const char* SourceName(Source s) {
  switch (s) {
    case Source::kDefault:
      return "default";
    case Source::kFile:
      return "file";
    case Source::kEnvironment:
      return "environment";
    case Source::kFlag:
      return "flag";
  }
  return "?";
}

std::string EnvNameFor(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '.') {
      out += "__";
    } else {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

Schema& Schema::Add(Setting s) {
  settings_.push_back(std::move(s));
  return *this;
}

const Setting* Schema::Find(const std::string& key) const {
  for (const auto& s : settings_) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::string Schema::ToMarkdown() const {
  std::ostringstream o;
  o << "| Variable | File key | Required | Default | Meaning |\n|---|---|---|---|---|\n";
  for (const auto& s : settings_) {
    std::string env = "`" + EnvNameFor(s.key) + "`";
    for (const auto& a : s.env_aliases) env += " (or `" + a + "`)";
    std::string req =
        s.required ? "yes" : (s.required_when.empty() ? "no" : "when `" + EnvNameFor(s.required_when) + "`");
    std::string def = s.default_value ? "`" + *s.default_value + "`" : "–";
    std::string meaning = s.description;
    if (s.min_length > 0) meaning += " (at least " + std::to_string(s.min_length) + " characters)";
    if (!s.choices.empty()) {
      meaning += " (one of:";
      for (const auto& c : s.choices) meaning += " `" + c + "`";
      meaning += ")";
    }
    o << "| " << env << " | `" << s.key << "` | " << req << " | " << def << " | " << meaning << " |\n";
  }
  return o.str();
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

namespace {

using RawValues = std::map<std::string, std::pair<std::string, Source>>;

struct Flags {
  std::optional<std::string> config_file;
  std::map<std::string, std::string> values;
};

// --key=value and --key value; --config names the file. Unknown flags are errors.
Flags ParseFlags(const Schema& schema, const std::vector<std::string>& flags, std::vector<std::string>& errors) {
  Flags out;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& f = flags[i];
    if (f.rfind("--", 0) != 0) {
      errors.push_back("unexpected argument '" + f + "'");
      continue;
    }
    std::string name = f.substr(2), value;
    auto eq = name.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::replace(name.begin(), name.end(), '-', '_');
    if (!has_value) {
      if (i + 1 >= flags.size()) {
        errors.push_back("flag --" + name + " needs a value");
        continue;
      }
      value = flags[++i];
    }
    if (name == "config") {
      out.config_file = value;
    } else if (schema.Find(name) == nullptr) {
      errors.push_back("unknown flag --" + name);
    } else {
      out.values[name] = value;
    }
  }
  return out;
}

void ReadConfigFile(const Schema& schema, const std::string& path, RawValues& raw, std::vector<std::string>& errors) {
  try {
    toml::value root = toml::parse(path);
    std::map<std::string, std::string> flat;
    Flatten(root, "", schema, flat, errors);
    for (auto& [k, v] : flat) raw[k] = {v, Source::kFile};
  } catch (const std::exception& e) {
    std::string what = e.what();
    errors.push_back("config file " + path + ": " + what.substr(0, what.find('\n')));
  }
}

void ReadEnvironment(const Schema& schema, const std::map<std::string, std::string>& environment, RawValues& raw) {
  for (const auto& s : schema.settings()) {
    // Aliases first so the main name wins.
    for (auto it = s.env_aliases.rbegin(); it != s.env_aliases.rend(); ++it) {
      auto e = environment.find(*it);
      if (e != environment.end() && !e->second.empty()) raw[s.key] = {e->second, Source::kEnvironment};
    }
    auto e = environment.find(EnvNameFor(s.key));
    if (e != environment.end()) raw[s.key] = {e->second, Source::kEnvironment};
  }
}

// An unset setting: an error when it is required (always, or because another is true).
void CheckRequired(const Setting& s, const RawValues& raw, std::vector<std::string>& errors) {
  bool required = s.required;
  if (!s.required_when.empty()) {
    auto cond = raw.find(s.required_when);
    required = required || (cond != raw.end() && ParseBool(cond->second.first).value_or(false));
  }
  if (!required) return;
  std::string why = s.required_when.empty() ? "" : " (required because " + EnvNameFor(s.required_when) + " is true)";
  errors.push_back(EnvNameFor(s.key) + " is required but not set" + why + ": " + s.description);
}

// A set value against its type, bounds and choices.
void CheckValue(const Setting& s, const std::string& v, std::vector<std::string>& errors) {
  std::string env = EnvNameFor(s.key);
  if (s.min_length > 0 && v.size() < s.min_length) {
    errors.push_back(env + " must be at least " + std::to_string(s.min_length) + " characters long, got " +
                     std::to_string(v.size()));
  }
  switch (s.type) {
    case Type::kBool:
      if (!ParseBool(v)) errors.push_back(env + " must be true or false, got '" + v + "'");
      break;
    case Type::kInt: {
      auto n = ParseInt(v);
      if (!n) {
        errors.push_back(env + " must be an integer, got '" + v + "'");
      } else if (*n < s.min_value || (s.max_value != 0 && *n > s.max_value)) {
        errors.push_back(env + " must be between " + std::to_string(s.min_value) + " and " +
                         std::to_string(s.max_value) + ", got " + v);
      }
      break;
    }
    case Type::kSecretJson:
      if (!nlohmann::json::accept(v)) errors.push_back(env + " must be JSON");
      break;
    default:
      break;
  }
  if (s.choices.empty()) return;
  std::string l = Lower(v);
  if (std::find(s.choices.begin(), s.choices.end(), l) != s.choices.end()) return;
  std::string list;
  for (const auto& c : s.choices) list += (list.empty() ? "" : ", ") + c;
  std::string shown = s.type == Type::kSecret ? "***" : v;
  errors.push_back(env + " must be one of " + list + ", got '" + shown + "'");
}

}  // namespace

StatusOr<Values> Load(const Schema& schema, const LoadInput& input) {
  std::vector<std::string> errors;
  RawValues raw;
  for (const auto& s : schema.settings()) {
    if (s.default_value) raw[s.key] = {*s.default_value, Source::kDefault};
  }
  // Precedence, lowest first: defaults, the file, the environment, flags.
  Flags flags = ParseFlags(schema, input.flags, errors);
  if (!flags.config_file) {
    auto it = input.environment.find("CONFIG_FILE");
    if (it != input.environment.end() && !it->second.empty()) flags.config_file = it->second;
  }
  if (flags.config_file) ReadConfigFile(schema, *flags.config_file, raw, errors);
  ReadEnvironment(schema, input.environment, raw);
  for (auto& [k, v] : flags.values) raw[k] = {v, Source::kFlag};

  Values values;
  values.schema_ = &schema;
  for (const auto& s : schema.settings()) {
    auto it = raw.find(s.key);
    if (it == raw.end() || it->second.first.empty()) {
      CheckRequired(s, raw, errors);
      continue;
    }
    CheckValue(s, it->second.first, errors);
    values.values_[s.key] = {it->second.first, it->second.second};
  }
  if (!errors.empty()) {
    std::string msg =
        "invalid configuration (" + std::to_string(errors.size()) + " problem" + (errors.size() == 1 ? "" : "s") + "):";
    for (const auto& e : errors) msg += "\n  - " + e;
    return InvalidArgument(msg);
  }
  return values;
}

const std::string& Values::String(const std::string& key) const {
  static const std::string kEmpty;
  // A key the program never declared is a bug, not an unset value that reads as "" or 0.
  if (schema_ == nullptr || schema_->Find(key) == nullptr) {
    std::fprintf(stderr, "flovyn: the program read the undeclared setting '%s'\n", key.c_str());
    std::abort();
  }
  auto it = values_.find(key);
  return it == values_.end() ? kEmpty : it->second.value;
}

long Values::Int(const std::string& key) const { return ParseInt(String(key)).value_or(0); }

bool Values::Bool(const std::string& key) const { return ParseBool(String(key)).value_or(false); }

bool Values::Has(const std::string& key) const { return values_.count(key) != 0; }

Source Values::SourceOf(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? Source::kDefault : it->second.source;
}

std::string Values::Print() const {
  std::ostringstream o;
  o << "# effective configuration of " << schema_->program() << " (secrets redacted)\n";
  for (const auto& s : schema_->settings()) {
    auto it = values_.find(s.key);
    if (it == values_.end()) {
      o << "# " << s.key << " is unset\n";
      continue;
    }
    o << s.key << " = ";
    const std::string& v = it->second.value;
    switch (s.type) {
      case Type::kSecret:
      case Type::kSecretJson:
        o << Quote("[redacted]");
        break;
      case Type::kSecretUrl:
        o << Quote(RedactUrl(v));
        break;
      case Type::kInt:
      case Type::kBool:
        o << v;
        break;
      case Type::kString:
        // A value under a password-like name is hidden; any URL has its credentials hidden.
        if (IsPasswordLikeKey(s.key))
          o << Quote("[redacted]");
        else if (v.find("://") != std::string::npos || v.find('@') != std::string::npos)
          o << Quote(RedactUrl(v));
        else
          o << Quote(v);
        break;
    }
    o << "  # " << SourceName(it->second.source) << "\n";
  }
  return o.str();
}

}  // namespace flovyn::config
