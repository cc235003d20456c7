// Search over workflow executions: the attributes a workflow sets on itself (string, number,
// bool, time) and the query language of `GET .../workflows?q=`, e.g.
//
//   kind = "order" AND status IN ("FAILED", "CANCELLED") AND customer = "c-42"
//     AND created > "2026-11-01" AND NOT (amount < 10.5 OR vip = true)
//
// A query is parsed into a WHERE clause over workflow_executions (alias `e`) built only from
// fixed fragments: built-in fields map to fixed columns, every other name is a search
// attribute, and every value is a bind parameter. Nothing from the query text reaches SQL.
// Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/unit.h"
#include "flovyn/core/status.h"
#include "flovyn/db/pool.h"

namespace flovyn::engine {

// A WHERE fragment and its parameters, numbered from the `first` given to the builder.
struct SqlWhere {
  std::string sql;
  db::Params params;
};

// Parses `query`; its placeholders start at $first. INVALID_ARGUMENT names the problem and its
// position ("query: expected a value after '>' at 17"), or the limit it passes.
StatusOr<SqlWhere> ParseSearch(std::string_view query, int first);

// "2026-11-01", "2026-11-01T10:00", "2026-11-01 10:00:00.5+02:00", ...: the same instant as
// text PostgreSQL reads unambiguously (UTC when no offset is given), or nullopt.
std::optional<std::string> NormaliseTime(std::string_view s);

// Names the query language reserves for execution fields; attributes may not use them.
bool IsBuiltinField(std::string_view name);

// Checks an attribute map ({"customer": "c-42", "amount": 12.5, "vip": true, "gone": null})
// against the limits: keys are names (letters, digits, '_', '-', '.'), values strings, numbers,
// booleans or null (null removes the key).
Status ValidateSearchAttributes(const nlohmann::json& attributes);

// Upserts (and for null, removes) the attributes of an execution inside `u`; refuses a change
// that leaves more than the limit search_attributes per execution.
Status PutSearchAttributes(Unit& u, const std::string& tenant, const std::string& execution,
                           const nlohmann::json& attributes);

// The attributes of an execution, as given.
StatusOr<nlohmann::json> SearchAttributesOf(db::Pool& pool, const std::string& execution);

}  // namespace flovyn::engine
