// Engine values passed between the store, the gRPC services and the REST API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flovyn/model/status.h"

namespace flovyn::engine {

// The owner of tenants made with static API keys (console tenants are owned by the organisation id).
inline constexpr const char* kStaticOwner = "static";

struct Tenant {
  std::string id, slug, name, created_at;
  std::string owner = kStaticOwner;
  bool existed = false;  // CreateTenant found it already made by the same owner
};

struct Event {
  int64_t sequence = 0;
  std::string type;
  std::string payload_json;
  int64_t created_at_ms = 0;
};

struct WorkflowView {
  std::string id, kind, queue, status;
  std::string input_json, output_json;  // "null" when absent
  std::optional<std::string> error;
  std::optional<std::string> parent_id;
  std::optional<std::string> idempotency_key;
  int64_t last_sequence = 0;
  std::string created_at, updated_at;
  std::optional<std::string> completed_at;
  std::string traceparent;
  std::optional<std::string> problem, problem_at;  // a worker could not replay it (see ReportProblem)
  std::string search_attributes_json = "{}";       // filled by GetWorkflow
};

struct TaskView {
  std::string id, kind, queue, status;
  std::string input_json, output_json, progress_json;
  std::optional<std::string> error;
  std::optional<std::string> workflow_id;
  std::optional<int64_t> workflow_sequence;
  int attempt = 0, max_attempts = 0;
  std::string created_at, updated_at;
  std::optional<std::string> completed_at;
  std::optional<std::string> lease_expires_at;
  std::string traceparent;
};

struct WorkerView {
  std::string id, name, version;
  std::vector<std::string> queues, workflow_kinds, task_kinds;
  std::string registered_at, last_heartbeat_at;
  double heartbeat_age_seconds = 0;
};

struct StartWorkflowRequest {
  std::string kind, queue = "default", input_json = "null";
  std::optional<std::string> idempotency_key;
  std::string traceparent;
  std::optional<std::string> continued_from;  // the run this one continues (ContinueAsNew)
};

struct StartResult {
  std::string execution_id;
  bool created = false;
};

struct WorkflowClaim {
  WorkflowView execution;
  std::vector<Event> events;
  std::vector<std::pair<std::string, std::string>> state;  // key, value json
  // 0: `events` is the whole history; otherwise the events after this sequence, which the
  // claiming worker keeps cached.
  int64_t history_after = 0;
  // A claim from the queue: another workflow of the queue was runnable when it was made.
  bool more = false;
};

// What a task runs and how it retries, as it is scheduled.
struct TaskSpec {
  std::string kind, queue, input_json;
  int max_attempts = 3;
  int64_t initial_backoff_ms = 1000, max_backoff_ms = 60000, lease_ms = 30000;
};

struct TaskClaim {
  TaskView task;
  int64_t lease_expires_at_ms = 0;
};

struct SubmitResult {
  int64_t last_sequence = 0;
  std::string status;
  std::vector<Event> events;
};

struct FailResult {
  bool will_retry = false;
  int64_t next_attempt_at_ms = 0;
};

struct ListFilter {
  std::optional<std::string> status, kind;
  std::optional<std::string> queue, parent;  // workflows only
  std::optional<std::string> query;          // workflows only: the search language of engine/search.h
  int limit = 50;
  std::optional<std::string> cursor;  // opaque, from the previous page
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::optional<std::string> next_cursor;
};

struct WorkerRegistration {
  std::string name, version;
  std::vector<std::string> queues, workflow_kinds, task_kinds;
};

struct SubmitTaskRequest {
  // A caller-chosen id makes the submit idempotent: submitting it again creates nothing.
  std::optional<std::string> id;
  std::string kind, queue = "default", input_json = "null";
  int max_attempts = 3;
  int64_t initial_backoff_ms = 1000, max_backoff_ms = 60000, lease_ms = 30000;
  std::string traceparent;
};

// Terminal statuses never change again.
using model::Name;
using model::WorkflowStatus;
inline bool IsTerminal(const std::string& status) { return model::IsTerminalName(status); }

}  // namespace flovyn::engine
