// Output for people (aligned tables, "field: value" lines) and for scripts (--output json: the
// server's JSON as it came).
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace flovyn::cli {

// A JSON value as a table cell: strings bare, null "-", anything else compact JSON, cut to `max`.
std::string Cell(const nlohmann::json& v, size_t max = 60);

// Column title and the key of each item it shows.
using Columns = std::vector<std::pair<std::string, std::string>>;

void PrintTable(std::ostream& out, const Columns& columns, const nlohmann::json& items);
// The named fields of an object, one "title: value" line each (values in full).
void PrintFields(std::ostream& out, const nlohmann::json& object, const Columns& fields);

}  // namespace flovyn::cli
