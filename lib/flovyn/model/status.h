// The statuses of workflow executions and tasks: one enum each, with the names the REST API,
// the console, the store and the database's CHECK constraints use (tests/store checks the
// constraints against these). Pure; thread-safe.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flovyn::model {

enum class WorkflowStatus { kPending, kRunning, kWaiting, kCompleted, kFailed, kCancelled };
enum class TaskStatus { kPending, kRunning, kCompleted, kFailed, kCancelled };

inline constexpr std::array<WorkflowStatus, 6> kWorkflowStatuses = {
    WorkflowStatus::kPending,   WorkflowStatus::kRunning, WorkflowStatus::kWaiting,
    WorkflowStatus::kCompleted, WorkflowStatus::kFailed,  WorkflowStatus::kCancelled};
inline constexpr std::array<TaskStatus, 5> kTaskStatuses = {
    TaskStatus::kPending, TaskStatus::kRunning, TaskStatus::kCompleted, TaskStatus::kFailed, TaskStatus::kCancelled};

std::string_view Name(WorkflowStatus s);
std::string_view Name(TaskStatus s);
std::optional<WorkflowStatus> ParseWorkflowStatus(std::string_view name);
std::optional<TaskStatus> ParseTaskStatus(std::string_view name);

// Ended for good: COMPLETED, FAILED or CANCELLED.
bool IsTerminal(WorkflowStatus s);
bool IsTerminal(TaskStatus s);
// The same for a name of either kind; false for a name that is neither.
bool IsTerminalName(std::string_view name);

// The names in order, for filters and listings.
std::vector<std::string> WorkflowStatusNames();
std::vector<std::string> TaskStatusNames();

}  // namespace flovyn::model
