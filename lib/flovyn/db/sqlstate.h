// SQLSTATE classified once: whether a failure is worth retrying, and which Status it becomes.
#pragma once

#include <string_view>

#include "flovyn/core/status.h"

namespace flovyn::db {

// True for failures that another attempt may not see: connection loss, serialization
// failures, deadlocks, the server shutting down or out of resources, lock timeouts.
bool IsRetryable(std::string_view sqlstate);

// Maps a SQLSTATE (and the server's message) to a Status with the canonical code.
Status StatusFromSqlState(std::string_view sqlstate, std::string_view message);

}  // namespace flovyn::db
