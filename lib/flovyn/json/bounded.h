// JSON from the network, parsed with bounds checked while parsing: nesting depth and size are
// refused before anything recurses on the document (serialising a 70,000-deep array overflows
// the stack; PostgreSQL refuses it with a database error). Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flovyn/core/status.h"

namespace flovyn::json_input {

struct Bounds {
  size_t max_depth = 256;                  // nested arrays and objects
  size_t max_bytes = size_t{1024} * 1024;  // text length
};

// The parsed document, or INVALID_ARGUMENT naming `field` and the limit it broke (or that the
// text is not JSON). Empty text is not JSON.
StatusOr<nlohmann::json> Parse(std::string_view text, std::string_view field, const Bounds& bounds = {});

}  // namespace flovyn::json_input
