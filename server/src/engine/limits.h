// Every bound on what a client may send to the engine, declared once. The REST API and the gRPC
// services check the same table, and docs/limits.md is printed from it
// (`flovyn-server --limits-catalogue`), so the document cannot drift. A value past a bound is
// refused with INVALID_ARGUMENT (400) naming the limit, before anything is written.
// Thread-safe (constants and pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flovyn/core/status.h"
#include "flovyn/json/bounded.h"

namespace flovyn::engine::limits {

struct Limit {
  std::string_view name;
  int64_t value;
  std::string_view unit;
  std::string_view applies_to;
};

inline constexpr Limit kJsonMaxDepth{"json_max_depth", 256, "levels",
                                     "nesting of every JSON value: inputs, outputs, payloads, state, request bodies"};
inline constexpr Limit kJsonMaxBytes{"json_max_bytes", int64_t{1024} * 1024, "bytes",
                                     "each JSON value (input, output, payload, state value, progress)"};
inline constexpr Limit kRequestMaxBytes{"request_max_bytes", int64_t{1024} * 1024, "bytes", "a REST request body"};
inline constexpr Limit kGrpcMessageMaxBytes{"grpc_message_max_bytes", int64_t{4} * 1024 * 1024, "bytes",
                                            "a gRPC request message (several JSON values may share it)"};
inline constexpr Limit kMaxDurationMs{"max_duration_ms", int64_t{365} * 24 * 3600 * 1000, "ms",
                                      "every duration and deadline: timers, promise timeouts, task leases, "
                                      "retry backoffs"};
inline constexpr Limit kNameMaxBytes{"name_max_bytes", 200, "bytes",
                                     "kinds, queues, names of timers, promises, signals, state keys, operations, "
                                     "children and workers, idempotency keys, worker versions (printable text)"};
inline constexpr Limit kTextMaxBytes{"text_max_bytes", 10000, "bytes", "error messages and cancellation reasons"};
inline constexpr Limit kMaxAttempts{"max_attempts", 1000, "attempts", "attempts of one task"};
inline constexpr Limit kCommandsPerSubmit{"commands_per_submit", 1000, "commands",
                                          "commands in one SubmitWorkflowCommands call"};
inline constexpr Limit kListItems{"list_items", 100, "items",
                                  "kinds in a poll; queues, workflow kinds and task kinds of a worker"};
inline constexpr Limit kPageSize{"page_size", 500, "items", "`limit` of a REST listing"};
inline constexpr Limit kSearchAttributes{"search_attributes", 50, "keys", "search attributes of one execution"};
inline constexpr Limit kSearchValueMaxBytes{"search_value_max_bytes", 1000, "bytes",
                                            "a string value of a search attribute or of a search query"};
inline constexpr Limit kSearchQueryMaxBytes{"search_query_max_bytes", 4000, "bytes", "a search query (`q`)"};
inline constexpr Limit kSearchQueryMaxTerms{"search_query_max_terms", 32, "comparisons",
                                            "comparisons in one search query (each value of IN counts)"};
inline constexpr Limit kTasksPerPoll{
    "max_tasks_per_poll", 100, "tasks",
    "`max_tasks` of one task poll; `take_tasks` of one command batch; results of one `CompleteTasks`"};

const std::vector<Limit>& All();
// docs/limits.md
std::string Markdown();

// INVALID_ARGUMENT "<field> ... the limit <name> (<value> <unit>)".
Status Exceeded(std::string_view field, const Limit& limit);

// 0 <= ms <= max_duration_ms.
Status Duration(int64_t ms, std::string_view field);
// 1 to name_max_bytes bytes with no control characters.
Status Name(std::string_view s, std::string_view field);
// At most text_max_bytes.
Status Text(std::string_view s, std::string_view field);
// At most list_items entries.
Status Items(size_t n, std::string_view field);
// Parser bounds for JSON values and REST bodies.
json_input::Bounds JsonBounds();

}  // namespace flovyn::engine::limits
