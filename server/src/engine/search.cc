#include "engine/search.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/limits.h"
#include "engine/sql.h"
#include "engine/sql_search.h"
#include "engine/values.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/row.h"
#include "flovyn/model/status.h"

namespace flovyn::engine {

using nlohmann::json;

namespace {

// ------------------------------------------------------------------------------ times

bool Digits(std::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

int DaysIn(int year, int month) {
  static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[static_cast<size_t>(month - 1)];
}

// The zone suffix at `at`: "Z", "+02", "+0200", "+02:00" or nothing (UTC).
std::optional<std::string> Zone(std::string_view s, size_t at) {
  if (at == s.size()) return "+00:00";
  if (s.substr(at) == "Z" || s.substr(at) == "z") return "+00:00";
  if (s[at] != '+' && s[at] != '-') return std::nullopt;
  int h = 0, m = 0;
  size_t rest = s.size() - at - 1;
  if (!Digits(s, at + 1, 2, h) || h > 14) return std::nullopt;
  if (rest == 4 ? !Digits(s, at + 3, 2, m) : rest == 5 ? (s[at + 3] != ':' || !Digits(s, at + 4, 2, m)) : rest != 2) {
    return std::nullopt;
  }
  if (m > 59) return std::nullopt;
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%c%02d:%02d", s[at], h, m);
  return std::string(buf.data());
}

// ------------------------------------------------------------------------------ lexer

enum class Tok { kEnd, kName, kString, kNumber, kTrue, kFalse, kAnd, kOr, kNot, kIn, kOp, kOpen, kClose, kComma };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;  // a name, a string's value, a number, an operator
  size_t pos = 0;
};

bool NameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

bool KeywordIs(std::string_view word, std::string_view kw) {
  return word.size() == kw.size() && std::equal(word.begin(), word.end(), kw.begin(), [](char a, char b) {
           return std::toupper(static_cast<unsigned char>(a)) == b;
         });
}

Status Bad(std::string_view what, size_t pos) {
  return InvalidArgument("query: " + std::string(what) + " at " + std::to_string(pos + 1));
}

StatusOr<Token> LexString(std::string_view q, size_t& i) {
  Token t{Tok::kString, "", i};
  for (++i; i < q.size() && q[i] != '"'; ++i) {
    if (q[i] == '\\' && i + 1 < q.size() && (q[i + 1] == '"' || q[i + 1] == '\\')) ++i;
    if (static_cast<unsigned char>(q[i]) < 0x20) return Bad("control character in a string", i);
    t.text += q[i];
  }
  if (i == q.size()) return Bad("unterminated string", t.pos);
  ++i;
  if (t.text.size() > static_cast<size_t>(limits::kSearchValueMaxBytes.value)) {
    return limits::Exceeded("query: a string", limits::kSearchValueMaxBytes);
  }
  return t;
}

StatusOr<std::vector<Token>> Lex(std::string_view q) {
  std::vector<Token> out;
  size_t i = 0;
  while (true) {
    while (i < q.size() && std::isspace(static_cast<unsigned char>(q[i]))) ++i;
    if (i == q.size()) break;
    char c = q[i];
    size_t start = i;
    if (c == '"') {
      ASSIGN_OR_RETURN(auto t, LexString(q, i));
      out.push_back(std::move(t));
    } else if (c == '(' || c == ')' || c == ',') {
      out.push_back({c == '(' ? Tok::kOpen : c == ')' ? Tok::kClose : Tok::kComma, std::string(1, c), i++});
    } else if (c == '=' || c == '<' || c == '>' || c == '!') {
      std::string op(1, c);
      if (i + 1 < q.size() && (q[i + 1] == '=' || (c == '<' && q[i + 1] == '>'))) op += q[++i];
      ++i;
      if (op == "!") return Bad("'!' must be followed by '='", start);
      if (op == "==") op = "=";
      if (op == "<>") op = "!=";
      out.push_back({Tok::kOp, op, start});
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
      ++i;
      while (i < q.size() && (std::isalnum(static_cast<unsigned char>(q[i])) || q[i] == '.' ||
                              ((q[i] == '-' || q[i] == '+') && (q[i - 1] == 'e' || q[i - 1] == 'E')))) {
        ++i;
      }
      std::string text(q.substr(start, i - start));
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (end != text.c_str() + text.size() || !std::isfinite(v)) return Bad("'" + text + "' is not a number", start);
      out.push_back({Tok::kNumber, text, start});
    } else if (NameChar(c)) {
      while (i < q.size() && NameChar(q[i])) ++i;
      std::string word(q.substr(start, i - start));
      Tok type = KeywordIs(word, "AND")     ? Tok::kAnd
                 : KeywordIs(word, "OR")    ? Tok::kOr
                 : KeywordIs(word, "NOT")   ? Tok::kNot
                 : KeywordIs(word, "IN")    ? Tok::kIn
                 : KeywordIs(word, "TRUE")  ? Tok::kTrue
                 : KeywordIs(word, "FALSE") ? Tok::kFalse
                                            : Tok::kName;
      out.push_back({type, std::move(word), start});
    } else {
      return Bad(std::string("unexpected '") + c + "'", start);
    }
  }
  out.push_back({Tok::kEnd, "", q.size()});
  return out;
}

// ------------------------------------------------------------------------------ parser

// How a field compares: a fixed column expression and what values it takes.
enum class FieldType { kText, kStatus, kUuid, kTime };
struct Builtin {
  std::string_view name;
  std::string_view column;
  FieldType type;
};
constexpr std::array<Builtin, 9> kBuiltins{{{"id", "e.id", FieldType::kUuid},
                                            {"kind", "e.kind", FieldType::kText},
                                            {"queue", "e.queue", FieldType::kText},
                                            {"status", "e.status", FieldType::kStatus},
                                            {"parent", "e.parent_id", FieldType::kUuid},
                                            {"created", "e.created_at", FieldType::kTime},
                                            {"started", "e.created_at", FieldType::kTime},
                                            {"updated", "e.updated_at", FieldType::kTime},
                                            {"completed", "e.completed_at", FieldType::kTime}}};

const Builtin* FindBuiltin(std::string_view name) {
  for (const auto& b : kBuiltins) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, int first) : toks_(std::move(toks)), next_param_(first) {}

  StatusOr<SqlWhere> Run() {
    ASSIGN_OR_RETURN(auto sql, Or(0));
    if (Peek().type != Tok::kEnd) return Bad("expected AND, OR or the end, found '" + Peek().text + "'", Peek().pos);
    return SqlWhere{std::move(sql), std::move(params_)};
  }

 private:
  const Token& Peek() const { return toks_[at_]; }
  const Token& Take() { return toks_[at_ < toks_.size() - 1 ? at_++ : at_]; }

  std::string Param(std::optional<std::string> v, std::string_view cast) {
    params_.push_back(std::move(v));
    return "$" + std::to_string(next_param_++) + std::string(cast);
  }

  StatusOr<std::string> Or(int depth) {
    if (depth > 16) return Bad("parentheses nested too deeply", Peek().pos);
    ASSIGN_OR_RETURN(auto left, And(depth));
    while (Peek().type == Tok::kOr) {
      Take();
      ASSIGN_OR_RETURN(auto right, And(depth));
      left.insert(0, "(").append(" OR ").append(right).append(")");
    }
    return left;
  }

  StatusOr<std::string> And(int depth) {
    ASSIGN_OR_RETURN(auto left, Unary(depth));
    while (Peek().type == Tok::kAnd) {
      Take();
      ASSIGN_OR_RETURN(auto right, Unary(depth));
      left.insert(0, "(").append(" AND ").append(right).append(")");
    }
    return left;
  }

  StatusOr<std::string> Unary(int depth) {
    if (Peek().type == Tok::kNot) {
      Take();
      ASSIGN_OR_RETURN(auto inner, Unary(depth + 1));
      return "NOT " + inner;
    }
    if (Peek().type == Tok::kOpen) {
      Take();
      ASSIGN_OR_RETURN(auto inner, Or(depth + 1));
      if (Take().type != Tok::kClose) return Bad("expected ')'", toks_[at_ - 1].pos);
      return "(" + inner + ")";
    }
    return Comparison();
  }

  StatusOr<Token> Value(const Token& after) {
    const Token& v = Take();
    if (v.type == Tok::kString || v.type == Tok::kNumber || v.type == Tok::kTrue || v.type == Tok::kFalse) {
      if (++terms_ > limits::kSearchQueryMaxTerms.value) {
        return limits::Exceeded("query", limits::kSearchQueryMaxTerms);
      }
      return v;
    }
    return Bad("expected a value after '" + after.text + "'", v.pos);
  }

  StatusOr<std::string> Comparison() {
    const Token name = Take();
    if (name.type != Tok::kName) return Bad("expected a field name, found '" + name.text + "'", name.pos);
    const Token op = Take();
    std::vector<Token> values;
    if (op.type == Tok::kIn) {
      if (Take().type != Tok::kOpen) return Bad("expected '(' after IN", op.pos);
      do {
        ASSIGN_OR_RETURN(auto v, Value(op));
        values.push_back(std::move(v));
      } while (Peek().type == Tok::kComma && Take().type == Tok::kComma);
      if (Take().type != Tok::kClose) return Bad("expected ')' to close IN", toks_[at_ - 1].pos);
    } else if (op.type == Tok::kOp) {
      ASSIGN_OR_RETURN(auto v, Value(op));
      values.push_back(std::move(v));
    } else {
      return Bad("expected an operator (=, !=, <, <=, >, >=, IN) after '" + name.text + "'", op.pos);
    }
    std::string sql_op = op.type == Tok::kIn ? "=" : op.text == "!=" ? "<>" : op.text;
    if (const Builtin* b = FindBuiltin(name.text)) return BuiltinComparison(*b, op, sql_op, values);
    return AttributeComparison(name, op, sql_op, values);
  }

  // `column op value`, or for IN `(column = v1 OR column = v2 ...)`.
  static std::string Join(const std::vector<std::string>& parts) {
    if (parts.size() == 1) return parts[0];
    std::string out = "(";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? " OR " : "") + parts[i];
    return out + ")";
  }

  StatusOr<std::string> BuiltinComparison(const Builtin& b, const Token& op, const std::string& sql_op,
                                          const std::vector<Token>& values) {
    bool ordering = sql_op != "=" && sql_op != "<>";
    if (ordering && b.type != FieldType::kTime) {
      return Bad("'" + std::string(b.name) + "' compares only with =, != and IN", op.pos);
    }
    std::vector<std::string> parts;
    for (const auto& v : values) {
      if (v.type != Tok::kString) return Bad("'" + std::string(b.name) + "' takes a string", v.pos);
      std::string cast;
      std::string value = v.text;
      if (b.type == FieldType::kStatus) {
        auto all = model::WorkflowStatusNames();
        if (std::find(all.begin(), all.end(), value) == all.end()) {
          return Bad("'" + value + "' is not a workflow status", v.pos);
        }
      } else if (b.type == FieldType::kUuid) {
        if (!IsUuid(value)) return Bad("'" + std::string(b.name) + "' takes a UUID", v.pos);
        cast = "::uuid";
      } else if (b.type == FieldType::kTime) {
        auto t = NormaliseTime(value);
        if (!t) return Bad("'" + value + "' is not a time (2026-11-01 or 2026-11-01T10:00:00Z)", v.pos);
        value = *t;
        cast = "::timestamptz";
      }
      parts.push_back(std::string(b.column) + " " + sql_op + " " + Param(value, cast));
    }
    return Join(parts);
  }

  // EXISTS over the execution's attribute of that name, compared on the typed column the value
  // selects: a number the number, true/false the bool, a time-like string the time, any other
  // string the text.
  StatusOr<std::string> AttributeComparison(const Token& name, const Token& op, const std::string& sql_op,
                                            const std::vector<Token>& values) {
    if (name.text.size() > static_cast<size_t>(limits::kNameMaxBytes.value)) {
      return limits::Exceeded("query: an attribute name", limits::kNameMaxBytes);
    }
    bool ordering = sql_op != "=" && sql_op != "<>";
    std::string key = Param(name.text, "");
    std::vector<std::string> parts;
    for (const auto& v : values) {
      if (v.type == Tok::kTrue || v.type == Tok::kFalse) {
        if (ordering) return Bad("true and false compare only with =, != and IN", op.pos);
        parts.push_back("a.bool_value " + sql_op + " " + Param(v.type == Tok::kTrue ? "true" : "false", "::boolean"));
      } else if (v.type == Tok::kNumber) {
        parts.push_back("a.num_value " + sql_op + " " + Param(v.text, "::float8"));
      } else if (auto t = NormaliseTime(v.text)) {
        parts.push_back("a.time_value " + sql_op + " " + Param(*t, "::timestamptz"));
      } else {
        parts.push_back("a.text_value " + sql_op + " " + Param(v.text, ""));
      }
    }
    return "EXISTS (SELECT 1 FROM workflow_search_attributes a WHERE a.execution_id = e.id AND a.key = " + key +
           " AND " + Join(parts) + ")";
  }

  std::vector<Token> toks_;
  size_t at_ = 0;
  int next_param_;
  int terms_ = 0;
  db::Params params_;
};

bool AttributeKeyOk(const std::string& k) {
  if (k.empty() || k.size() > static_cast<size_t>(limits::kNameMaxBytes.value)) return false;
  if (!std::isalpha(static_cast<unsigned char>(k[0])) && k[0] != '_') return false;
  return std::all_of(k.begin(), k.end(), NameChar);
}

}  // namespace

std::optional<std::string> NormaliseTime(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysIn(y, mo) || y < 1) return std::nullopt;
  size_t at = 10;
  std::string frac;
  if (at < s.size() && (s[at] == 'T' || s[at] == 't' || s[at] == ' ')) {
    if (!Digits(s, at + 1, 2, h) || s.size() < at + 6 || s[at + 3] != ':' || !Digits(s, at + 4, 2, mi)) {
      return std::nullopt;
    }
    at += 6;
    if (at < s.size() && s[at] == ':') {
      if (!Digits(s, at + 1, 2, sec)) return std::nullopt;
      at += 3;
      if (at < s.size() && s[at] == '.') {
        size_t f = at + 1;
        while (f < s.size() && std::isdigit(static_cast<unsigned char>(s[f]))) ++f;
        if (f == at + 1 || f - at - 1 > 9) return std::nullopt;
        frac = std::string(s.substr(at, f - at));
        at = f;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  }
  auto zone = Zone(s, at);
  if (!zone) return std::nullopt;
  std::array<char, 80> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, sec);
  return std::string(buf.data()) + frac + *zone;
}

bool IsBuiltinField(std::string_view name) { return FindBuiltin(name) != nullptr; }

StatusOr<SqlWhere> ParseSearch(std::string_view query, int first) {
  if (query.size() > static_cast<size_t>(limits::kSearchQueryMaxBytes.value)) {
    return limits::Exceeded("query", limits::kSearchQueryMaxBytes);
  }
  ASSIGN_OR_RETURN(auto toks, Lex(query));
  if (toks.size() == 1) return InvalidArgument("query: empty");
  return Parser(std::move(toks), first).Run();
}

Status ValidateSearchAttributes(const json& attributes) {
  if (!attributes.is_object()) return InvalidArgument("search attributes must be a JSON object");
  for (const auto& [k, v] : attributes.items()) {
    if (!AttributeKeyOk(k)) {
      return InvalidArgument("search attribute name '" + k.substr(0, 64) +
                             "' must start with a letter or '_' and hold only letters, digits, '_', '-' and '.' "
                             "(at most name_max_bytes)");
    }
    if (IsBuiltinField(k)) return InvalidArgument("'" + k + "' is a built-in search field, not an attribute name");
    if (v.is_string()) {
      if (v.get_ref<const std::string&>().size() > static_cast<size_t>(limits::kSearchValueMaxBytes.value)) {
        return limits::Exceeded("search attribute '" + k + "'", limits::kSearchValueMaxBytes);
      }
    } else if (v.is_number()) {
      if (!std::isfinite(v.get<double>())) return InvalidArgument("search attribute '" + k + "' is not finite");
    } else if (!v.is_boolean() && !v.is_null()) {
      return InvalidArgument("search attribute '" + k + "' must be a string, number, boolean or null");
    }
  }
  if (attributes.size() > static_cast<size_t>(limits::kSearchAttributes.value)) {
    return limits::Exceeded("search attributes", limits::kSearchAttributes);
  }
  return Status::Ok();
}

Status PutSearchAttributes(Unit& u, const std::string& tenant, const std::string& execution, const json& attributes) {
  RETURN_IF_ERROR(ValidateSearchAttributes(attributes));
  for (const auto& [k, v] : attributes.items()) {
    if (v.is_null()) {
      RETURN_IF_ERROR(u.Exec(sql::kDeleteSearchAttribute, {execution, k}));
      continue;
    }
    std::optional<std::string> text, num, boolean, time;
    if (v.is_string()) {
      text = v.get<std::string>();
      time = NormaliseTime(*text);
    } else if (v.is_number()) {
      num = v.dump();
    } else {
      boolean = v.get<bool>() ? "true" : "false";
    }
    RETURN_IF_ERROR(u.Exec(sql::kUpsertSearchAttribute, {execution, tenant, k, v.dump(), text, num, boolean, time}));
  }
  ASSIGN_OR_RETURN(auto n, u.Exec(sql::kCountSearchAttributes, {execution}));
  if (db::Row(n, 0).Int("n") > limits::kSearchAttributes.value) {
    return limits::Exceeded("search attributes", limits::kSearchAttributes);
  }
  return Status::Ok();
}

StatusOr<json> SearchAttributesOf(db::Pool& pool, const std::string& execution) {
  ASSIGN_OR_RETURN(auto r, pool.Query(sql::kSearchAttributesOf, {execution}));
  json out = json::object();
  for (int i = 0; i < r.rows(); ++i) out[db::Row(r, i).Str("key")] = json::parse(db::Row(r, i).Str("value"));
  return out;
}

}  // namespace flovyn::engine
