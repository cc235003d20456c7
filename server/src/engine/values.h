// Checks and makers of the engine's values that come from the network: JSON documents, ids and
// tenant slugs. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flovyn/core/status.h"

namespace flovyn::engine {

// Validates that `text` is JSON within the engine's bounds; empty means null. Returns the
// normalised text.
StatusOr<std::string> NormaliseJson(const std::string& text, const std::string& field);
bool IsUuid(const std::string& s);
// A tenant slug: 1 to 63 of a-z, 0-9 and '-', not starting with '-' (the tenants table's CHECK).
bool IsSlug(const std::string& s);
// A random (version 4) UUID.
std::string NewUuid();
// A JSON array of the names, for statements that take arrays as JSON; nullopt (SQL NULL,
// "any") when there are none and `empty_is_null`.
// `text`, or nullopt (SQL NULL) when it is empty.
std::optional<std::string> NullIfEmpty(const std::string& text);
std::optional<std::string> JsonArray(const std::vector<std::string>& names, bool empty_is_null);

}  // namespace flovyn::engine
