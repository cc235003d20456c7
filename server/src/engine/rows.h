// The engine's values read from the rows of engine/sql.h's statements (by column name), and
// the paging of lists. Thread-safe (pure functions; ListPage uses the pool).
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "engine/model.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/row.h"

namespace flovyn::engine {

Tenant TenantFrom(const db::Row& r);
WorkflowView WorkflowFrom(const db::Row& r);
TaskView TaskFrom(const db::Row& r);
Event EventFrom(const db::Row& r);
WorkerView WorkerFrom(const db::Row& r);

// A page cursor: the hex of "<created_at as PostgreSQL prints it>|<id>". Decoding refuses
// anything else, so a forged cursor never reaches the database.
std::string EncodeCursor(const std::string& created_at, const std::string& id);
std::optional<std::pair<std::string, std::string>> DecodeCursor(const std::string& cursor);

// Runs a list statement of engine/sql.h ($1 tenant, $2 status, $3 kind, $4/$5 the cursor,
// $6 the limit plus one) and maps each row with `from`.
template <typename View>
StatusOr<Page<View>> ListPage(db::Pool& pool, const char* sql, View (*from)(const db::Row&), const std::string& tenant,
                              const ListFilter& f);

}  // namespace flovyn::engine
