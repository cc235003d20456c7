#include "flovyn/db/sqlstate.h"

#include <string>

#include <spdlog/spdlog.h>

namespace flovyn::db {

bool IsRetryable(std::string_view s) {
  if (s.size() != 5) return false;
  std::string_view cls = s.substr(0, 2);
  if (cls == "08") return true;                                   // connection exception
  if (cls == "53") return true;                                   // insufficient resources
  if (s == "40001" || s == "40P01") return true;                  // serialization failure, deadlock
  if (s == "57P01" || s == "57P02" || s == "57P03") return true;  // shutdown, crash, cannot connect now
  if (s == "55P03") return true;                                  // lock not available
  return false;
}

Status StatusFromSqlState(std::string_view s, std::string_view message) {
  std::string msg(message);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  // Codes a client sees carry our words, never the database's (its text names tables, values and
  // types); that text goes to the log. INTERNAL and UNAVAILABLE keep it for the log line that
  // ForClient writes at the edge.
  if (s.size() != 5) return Internal("database error: " + msg);
  std::string_view cls = s.substr(0, 2);
  if (s == "40001" || s == "40P01") return {StatusCode::kAborted, "transaction conflict; retry"};
  if (IsRetryable(s)) return Unavailable("database unavailable: " + msg);
  if (s == "57014") return DeadlineExceeded("statement timed out");
  if (cls == "23" || cls == "22") spdlog::info("database refused a value ({}): {}", s, msg);
  if (s == "23505") return {StatusCode::kAlreadyExists, "already exists"};
  if (cls == "23") return FailedPrecondition("conflicts with stored data");
  if (cls == "22") return InvalidArgument("a value is out of range or malformed");
  return Internal("database error (" + std::string(s) + "): " + msg);
}

}  // namespace flovyn::db
