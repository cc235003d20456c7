#include "event_rules.h"

#include <cctype>

#include "flovyn/core/status_macros.h"

namespace flovyn::plugins {

using nlohmann::json;

std::vector<std::string_view> SplitText(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

namespace {

bool IsIndex(std::string_view s) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

json InboundEvent::ToJson() const {
  json h = json::object();
  for (const auto& [k, v] : headers) h[k] = v;
  return {{"id", id}, {"type", type}, {"headers", h}, {"body", body}};
}

Status ValidatePath(const std::string& path) {
  auto bad = [&] {
    return InvalidArgument("'" + path.substr(0, 100) +
                           "' is not an event path (header.<name>, or body followed by .key or .index parts)");
  };
  if (path.size() > 200) return bad();
  if (path.rfind("header.", 0) == 0) return path.size() > 7 ? Status::Ok() : bad();
  if (path != "body" && path.rfind("body.", 0) != 0) return bad();
  for (std::string_view part : SplitText(path, '.')) {
    if (part.empty()) return bad();
  }
  return Status::Ok();
}

std::optional<json> Resolve(const InboundEvent& e, std::string_view path) {
  if (path.rfind("header.", 0) == 0) {
    std::string_view v = FindHeader(e.headers, path.substr(7));
    if (v.empty()) return std::nullopt;
    return json(std::string(v));
  }
  if (path != "body" && path.rfind("body.", 0) != 0) return std::nullopt;
  const json* at = &e.body;
  if (path.size() > 4) {
    for (std::string_view part : SplitText(path.substr(5), '.')) {
      if (at->is_object()) {
        auto it = at->find(std::string(part));
        if (it == at->end()) return std::nullopt;
        at = &*it;
      } else if (at->is_array() && IsIndex(part)) {
        size_t i = std::stoul(std::string(part));
        if (i >= at->size()) return std::nullopt;
        at = &(*at)[i];
      } else {
        return std::nullopt;
      }
    }
  }
  if (at->is_null() && path == "body" && e.body.is_null()) return std::nullopt;
  return *at;
}

std::optional<std::string> ResolveText(const InboundEvent& e, std::string_view path) {
  auto v = Resolve(e, path);
  if (!v || v->is_null()) return std::nullopt;
  return v->is_string() ? v->get<std::string>() : v->dump();
}

StatusOr<std::vector<Condition>> ParseConditions(const json& spec) {
  std::vector<Condition> out;
  if (spec.is_null()) return out;
  if (!spec.is_array() || spec.size() > 20) return InvalidArgument("'conditions' must be an array of at most 20");
  for (const auto& c : spec) {
    if (!c.is_object() || !c.contains("path") || !c["path"].is_string()) {
      return InvalidArgument("each condition needs a 'path'");
    }
    Condition cond;
    cond.path = c["path"].get<std::string>();
    RETURN_IF_ERROR(ValidatePath(cond.path));
    std::string op = c.value("op", "equals");
    if (op == "equals") {
      cond.op = Condition::Op::kEquals;
    } else if (op == "in") {
      cond.op = Condition::Op::kIn;
    } else if (op == "exists") {
      cond.op = Condition::Op::kExists;
    } else if (op == "prefix") {
      cond.op = Condition::Op::kPrefix;
    } else {
      return InvalidArgument("a condition's 'op' is one of equals, in, exists, prefix (got '" + op.substr(0, 40) +
                             "')");
    }
    cond.value = c.contains("value") ? c["value"] : json(nullptr);
    if (cond.op == Condition::Op::kIn && !cond.value.is_array()) {
      return InvalidArgument("an 'in' condition's 'value' must be an array");
    }
    if (cond.op == Condition::Op::kPrefix && !cond.value.is_string()) {
      return InvalidArgument("a 'prefix' condition's 'value' must be a string");
    }
    out.push_back(std::move(cond));
  }
  return out;
}

bool Holds(const std::vector<Condition>& conditions, const InboundEvent& e) {
  for (const auto& c : conditions) {
    auto v = Resolve(e, c.path);
    switch (c.op) {
      case Condition::Op::kExists:
        if (!v) return false;
        break;
      case Condition::Op::kEquals:
        if (!v || *v != c.value) return false;
        break;
      case Condition::Op::kIn: {
        bool found = false;
        for (const auto& x : c.value) found = found || (v && *v == x);
        if (!found) return false;
        break;
      }
      case Condition::Op::kPrefix:
        if (!v || !v->is_string() || v->get<std::string>().rfind(c.value.get<std::string>(), 0) != 0) return false;
        break;
    }
  }
  return true;
}

Status ValidateInputMapping(const json& spec) {
  if (spec.is_null()) return Status::Ok();
  if (spec.is_string()) return ValidatePath(spec.get<std::string>());
  if (!spec.is_object() || spec.size() > 50) {
    return InvalidArgument("'input' is a path, or an object of at most 50 keys mapping to paths");
  }
  for (const auto& [k, v] : spec.items()) {
    if (!v.is_string()) return InvalidArgument("'input." + k.substr(0, 40) + "' must be a path");
    RETURN_IF_ERROR(ValidatePath(v.get<std::string>()));
  }
  return Status::Ok();
}

json MapInput(const json& spec, const InboundEvent& e) {
  if (spec.is_null()) return e.ToJson();
  if (spec.is_string()) return Resolve(e, spec.get<std::string>()).value_or(json(nullptr));
  json out = json::object();
  for (const auto& [k, v] : spec.items()) out[k] = Resolve(e, v.get<std::string>()).value_or(json(nullptr));
  return out;
}

}  // namespace flovyn::plugins
