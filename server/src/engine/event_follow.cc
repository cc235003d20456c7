#include "engine/event_follow.h"

#include "engine/rest_support.h"

namespace flovyn::engine {

namespace {

bool Terminal(const std::string& type) {
  return type == "WORKFLOW_COMPLETED" || type == "WORKFLOW_FAILED" || type == "WORKFLOW_CANCELLED";
}

// A non-negative sequence number, or -1.
int64_t Sequence(std::string_view s) {
  if (s.empty() || s.size() > 18) return -1;
  int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

StatusOr<int64_t> SequenceParam(std::string_view s) {
  int64_t n = Sequence(s);
  if (n < 0) return InvalidArgument("a sequence number (after, Last-Event-ID) must be digits");
  return n;
}

EventFollow::EventFollow(Store& store, FollowSlots& slots, TenantId tenant, ExecutionId execution, int64_t after)
    : http::BodyStream(slots.options().poll),
      store_(store),
      slots_(slots),
      tenant_(std::move(tenant)),
      execution_(std::move(execution)),
      after_(after),
      last_sent_(std::chrono::steady_clock::now()) {}

std::string EventFollow::Next(bool& end) {
  std::string out;
  auto events = store_.Events(tenant_, execution_, after_);
  if (!events.ok()) {
    // The execution went (retention) or the database is away: say so and end; the client
    // resumes with Last-Event-ID.
    end = true;
    return "event: error\ndata: " +
           nlohmann::json({{"code", events.status().code() == StatusCode::kNotFound ? "NOT_FOUND" : "UNAVAILABLE"}})
               .dump() +
           "\n\n";
  }
  for (const auto& e : *events) {
    out += "id: " + std::to_string(e.sequence) + "\nevent: " + e.type + "\ndata: " + ToJson(e).dump() + "\n\n";
    after_ = e.sequence;
    if (Terminal(e.type)) end = true;
  }
  auto now = std::chrono::steady_clock::now();
  if (out.empty() && now - last_sent_ >= slots_.options().keepalive) out = ": keep-alive\n\n";
  if (!out.empty()) last_sent_ = now;
  return out;
}

http::Response FollowEvents(Store& store, FollowSlots& slots, const TenantId& tenant, const ExecutionId& execution,
                            const http::Request& req) {
  auto w = store.GetWorkflow(tenant, execution);
  if (!w.ok()) return http::ErrorResponse(w.status());
  int64_t after = 0;
  std::string_view resume = req.Header("last-event-id");
  if (resume.empty()) {
    auto it = req.query.find("after");
    if (it != req.query.end()) resume = it->second;
  }
  if (!resume.empty()) {
    auto n = SequenceParam(resume);
    if (!n.ok()) return http::ErrorResponse(n.status());
    after = *n;
  }
  if (!slots.TryTake()) {
    http::Response r = http::ErrorResponse(503, "UNAVAILABLE",
                                           "too many open event streams (the limit is engine.max_event_streams = " +
                                               std::to_string(slots.options().max_streams) + "); retry later");
    r.With("Retry-After", "1");
    return r;
  }
  http::Response r;
  r.content_type = "text/event-stream";
  r.stream = std::make_shared<EventFollow>(store, slots, tenant, execution, after);
  return r;
}

}  // namespace flovyn::engine
