// The engine's ids as distinct types, so a task id cannot be passed where an execution id is
// expected and the store's signatures say what each argument is. An id is made explicitly from
// text (a request's path, a claim, a row) and reads as its text wherever text is wanted (SQL
// parameters, JSON), which loses nothing. Values; thread-compatible.
#pragma once

#include <compare>
#include <ostream>
#include <string>
#include <utility>

namespace flovyn::engine {

template <typename Tag>
class Id {
 public:
  Id() = default;
  explicit Id(std::string value) : value_(std::move(value)) {}
  const std::string& str() const { return value_; }
  operator const std::string&() const { return value_; }  // NOLINT(google-explicit-constructor): reads as text
  bool empty() const { return value_.empty(); }
  friend bool operator==(const Id&, const Id&) = default;
  friend auto operator<=>(const Id&, const Id&) = default;
  // Against text (a column, a message field): the same characters.
  friend bool operator==(const Id& a, const std::string& b) { return a.value_ == b; }
  friend std::ostream& operator<<(std::ostream& o, const Id& id) { return o << id.value_; }

 private:
  std::string value_;
};

using TenantId = Id<struct TenantIdTag>;
using ExecutionId = Id<struct ExecutionIdTag>;
using TaskId = Id<struct TaskIdTag>;
using WorkerId = Id<struct WorkerIdTag>;
using PromiseId = Id<struct PromiseIdTag>;

}  // namespace flovyn::engine
