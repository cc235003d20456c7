#include "flovyn/sdk/testing.h"

#include <thread>

namespace flovyn::testing {

std::vector<v1::WorkflowEvent> HistoryFromJson(const Json& history) {
  const Json& list = history.is_object() && history.contains("items") ? history["items"] : history;
  std::vector<v1::WorkflowEvent> out;
  if (!list.is_array()) return out;
  for (const auto& e : list) {
    v1::WorkflowEvent ev;
    ev.set_sequence(e.value("sequence", int64_t{0}));
    ev.set_type(e.value("type", ""));
    ev.set_payload_json(e.contains("payload") ? e["payload"].dump() : "{}");
    ev.set_created_at_ms(e.value("createdAtMs", int64_t{0}));
    out.push_back(std::move(ev));
  }
  return out;
}

ReplayVerdict ReplayHistory(const WorkflowFactory& workflow, const Json& history, const std::string& execution_id) {
  ReplayVerdict v;
  v.decision = Decide(execution_id, HistoryFromJson(history), workflow);
  v.violation = v.decision.violation;
  return v;
}

grpc::Status RunSkippingTime(sdk::Client& client, const std::string& execution_id,
                             std::vector<v1::WorkflowEvent>* history, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    history->clear();
    grpc::Status s = client.GetEvents(execution_id, history);
    if (!s.ok()) return s;
    const std::string& last = history->empty() ? "" : history->back().type();
    if (last == "WORKFLOW_COMPLETED" || last == "WORKFLOW_FAILED" || last == "WORKFLOW_CANCELLED") return s;
    s = client.SkipTime(execution_id);
    if (!s.ok()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {grpc::StatusCode::DEADLINE_EXCEEDED, "the execution did not end within the limit"};
}

}  // namespace flovyn::testing
