// Testing workflow code: replay a recorded history through the current code and get a verdict,
// so a CI job can check that a code change keeps running executions on their path.
//
//   // history.json: GET /api/tenants/{t}/workflows/{id}/events of a production execution
//   auto verdict = flovyn::testing::ReplayHistory(flovyn::MakeWorkflow(Checkout), history);
//   EXPECT_TRUE(verdict.ok()) << verdict.violation;
#pragma once

#include <string>
#include <vector>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

namespace flovyn::testing {

// A history as GET .../workflows/{id}/events returns it ({"items": [...]}, or the bare array):
// each event with sequence, type, payload and createdAtMs.
std::vector<v1::WorkflowEvent> HistoryFromJson(const Json& history);

struct ReplayVerdict {
  std::string violation;  // empty: the code takes the recorded path
  Decision decision;      // what the code would submit next
  bool ok() const { return violation.empty(); }
};

// Replays `history` through `workflow`. `execution_id` seeds ctx.Random() and ctx.Uuid(): pass
// the recorded execution's id when the code uses them.
ReplayVerdict ReplayHistory(const WorkflowFactory& workflow, const Json& history,
                            const std::string& execution_id = "replay");

// Time skipping against a real server started with ENGINE__ALLOW_TIME_SKIPPING=true: waits for
// the execution to end, making its pending timers fire and its promises time out as soon as it
// waits on them, so a 30-day reminder runs in well under a second. Returns the history (ending
// with the terminal event), or the status that stopped it (DEADLINE_EXCEEDED after `limit`).
grpc::Status RunSkippingTime(sdk::Client& client, const std::string& execution_id,
                             std::vector<v1::WorkflowEvent>* history,
                             std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace flovyn::testing
