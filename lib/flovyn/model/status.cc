#include "flovyn/model/status.h"

namespace flovyn::model {

std::string_view Name(WorkflowStatus s) {
  switch (s) {
    case WorkflowStatus::kPending:
      return "PENDING";
    case WorkflowStatus::kRunning:
      return "RUNNING";
    case WorkflowStatus::kWaiting:
      return "WAITING";
    case WorkflowStatus::kCompleted:
      return "COMPLETED";
    case WorkflowStatus::kFailed:
      return "FAILED";
    case WorkflowStatus::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

std::string_view Name(TaskStatus s) {
  switch (s) {
    case TaskStatus::kPending:
      return "PENDING";
    case TaskStatus::kRunning:
      return "RUNNING";
    case TaskStatus::kCompleted:
      return "COMPLETED";
    case TaskStatus::kFailed:
      return "FAILED";
    case TaskStatus::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

std::optional<WorkflowStatus> ParseWorkflowStatus(std::string_view name) {
  for (auto s : kWorkflowStatuses) {
    if (Name(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<TaskStatus> ParseTaskStatus(std::string_view name) {
  for (auto s : kTaskStatuses) {
    if (Name(s) == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(WorkflowStatus s) {
  return s == WorkflowStatus::kCompleted || s == WorkflowStatus::kFailed || s == WorkflowStatus::kCancelled;
}

bool IsTerminal(TaskStatus s) {
  return s == TaskStatus::kCompleted || s == TaskStatus::kFailed || s == TaskStatus::kCancelled;
}

bool IsTerminalName(std::string_view name) {
  if (auto w = ParseWorkflowStatus(name)) return IsTerminal(*w);
  return false;  // every task status is also a workflow status
}

std::vector<std::string> WorkflowStatusNames() {
  std::vector<std::string> out;
  out.reserve(kWorkflowStatuses.size());
  for (auto s : kWorkflowStatuses) out.emplace_back(Name(s));
  return out;
}

std::vector<std::string> TaskStatusNames() {
  std::vector<std::string> out;
  out.reserve(kTaskStatuses.size());
  for (auto s : kTaskStatuses) out.emplace_back(Name(s));
  return out;
}

}  // namespace flovyn::model
