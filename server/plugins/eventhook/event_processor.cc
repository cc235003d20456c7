#include "event_processor.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include <spdlog/spdlog.h>

#include "engine/commands.h"
#include "engine/limits.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::plugins {

using nlohmann::json;

namespace eventhook_metric {
using T = metrics::MetricType;
const metrics::MetricSpec kEvents{
    "flovyn_eventhook_events_total",
    T::kCounter,
    "Deliveries and their processing, by source (tenant/source) and outcome: received, verified, rejected (bad "
    "signature or credential), limited (size or rate), duplicate, routed, unrouted (no route matched), retried, "
    "failed (gave up).",
    {"source", "outcome"},
    "Event hooks"};
const metrics::MetricSpec kProcessing{"flovyn_eventhook_processing_seconds",
                                      T::kHistogram,
                                      "Time from receiving an event to the end of its successful processing.",
                                      {},
                                      "Event hooks"};
}  // namespace eventhook_metric

const std::vector<const metrics::MetricSpec*>& EventhookMetricSpecs() {
  static const std::vector<const metrics::MetricSpec*> all{&eventhook_metric::kEvents, &eventhook_metric::kProcessing};
  return all;
}

namespace {

// A UUID that is the same for the same text (so a retried action submits the same task).
std::string UuidFrom(const std::string& text) {
  std::string h = crypto::Sha256(text).substr(0, 16);
  h[6] = static_cast<char>((h[6] & 0x0f) | 0x80);  // version 8: custom
  h[8] = static_cast<char>((h[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = crypto::Hex(h);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

Status NeedString(const json& a, const char* field) {
  if (!a.contains(field) || !a[field].is_string() || a[field].get<std::string>().empty()) {
    return InvalidArgument(std::string("the action needs '") + field + "'");
  }
  return engine::limits::Name(a[field].get<std::string>(), field);
}

// The kind and queue of work an action creates, checked as the engine checks them.
Status WorkNames(const json& a) {
  RETURN_IF_ERROR(NeedString(a, "kind"));
  if (!a.contains("queue")) return Status::Ok();
  return NeedString(a, "queue");
}

Status OptionalPath(const json& a, const char* field) {
  if (!a.contains(field)) return Status::Ok();
  if (!a[field].is_string()) return InvalidArgument(std::string("'") + field + "' must be a path");
  return ValidatePath(a[field].get<std::string>());
}

std::string Text(const json& a, const char* field, const char* fallback) {
  return a.contains(field) && a[field].is_string() ? a[field].get<std::string>() : fallback;
}

// The workflow an action starts; its key from the event (a path), or the event and route ids.
engine::StartWorkflowRequest StartOf(const json& w, const json& a, const InboundEvent& e, const std::string& route) {
  engine::StartWorkflowRequest req;
  req.kind = Text(w, "kind", "");
  req.queue = Text(w, "queue", "default");
  req.input_json = MapInput(w.contains("input") ? w["input"] : json(nullptr), e).dump();
  std::optional<std::string> key;
  if (a.contains("idempotencyKeyPath")) key = ResolveText(e, a["idempotencyKeyPath"].get<std::string>());
  req.idempotency_key = key ? *key : "eventhook:" + e.id + ":" + route;
  return req;
}

}  // namespace

Status ValidateAction(const json& a) {
  if (!a.is_object()) return InvalidArgument("'action' must be an object with a 'type'");
  std::string type = Text(a, "type", "");
  RETURN_IF_ERROR(OptionalPath(a, "idempotencyKeyPath"));
  if (a.contains("input")) RETURN_IF_ERROR(ValidateInputMapping(a["input"]));
  if (type == "start_workflow" || type == "submit_task") return WorkNames(a);
  if (type == "signal") {
    RETURN_IF_ERROR(NeedString(a, "signal"));
    if (!a.contains("idempotencyKeyPath")) {
      return InvalidArgument("a signal action needs 'idempotencyKeyPath' (the key of the execution to signal)");
    }
    if (!a.contains("workflow") || !a["workflow"].is_object()) {
      return InvalidArgument("a signal action needs 'workflow' {kind, queue, input} to start when none runs");
    }
    if (a["workflow"].contains("input")) RETURN_IF_ERROR(ValidateInputMapping(a["workflow"]["input"]));
    return WorkNames(a["workflow"]);
  }
  if (type == "resolve_promise" || type == "reject_promise") {
    if (!a.contains("promiseIdPath")) return InvalidArgument("the action needs 'promiseIdPath'");
    RETURN_IF_ERROR(OptionalPath(a, "promiseIdPath"));
    return OptionalPath(a, "errorPath");
  }
  return InvalidArgument(
      "'action.type' is one of start_workflow, submit_task, signal, resolve_promise, reject_promise");
}

void EventProcessor::Start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { Loop(); });
}

void EventProcessor::Stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void EventProcessor::Wake() {
  {
    MutexLock l(mu_);
    ++wakes_;
  }
  cv_.NotifyOne();
}

void EventProcessor::Loop() {
  uint64_t seen = 0;
  while (true) {
    {
      MutexLock l(mu_);
      if (stopping_) return;
      seen = wakes_;
    }
    auto handled = RunOnce();
    if (!handled.ok()) spdlog::warn("eventhook: {}", handled.status().message());
    if (handled.ok() && *handled > 0) continue;
    auto until = std::chrono::steady_clock::now() + options_.idle_poll;
    MutexLock l(mu_);
    while (!stopping_ && wakes_ == seen && std::chrono::steady_clock::now() < until) cv_.WaitUntil(mu_, until);
  }
}

StatusOr<int> EventProcessor::RunOnce(int limit) {
  // A batch in one transaction: the claims, every action (the engine's operations join it, each
  // action in a savepoint of its own) and the recorded outcomes commit once.
  std::vector<Counted> counted;
  Status s = engine_.Run([&](engine::Unit& u) -> Status {
    counted.clear();
    auto events = EventhookStore::Claim(u.tx(), limit, options_.lease_ms);
    if (!events.ok()) return events.status();
    engine::Store::Joined joined(u);
    std::map<std::string, std::vector<Route>> routes;  // by source, read once per batch
    for (const auto& e : *events) {
      if (routes.count(e.source_id) == 0) {
        auto r = EventhookStore::RoutesOf(u.tx(), e.source_id);
        if (!r.ok()) return r.status();
        routes[e.source_id] = std::move(*r);
      }
      auto c = Handle(u, e, routes[e.source_id]);
      if (!c.ok()) return c.status();
      counted.push_back(*c);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (metrics_ != nullptr) {  // after the commit: a rolled-back batch is counted when it runs again
    for (const auto& c : counted) {
      metrics_->Count(c.label, c.outcome);
      if (c.seconds >= 0) metrics_->processing.Observe(c.seconds);
    }
  }
  return static_cast<int>(counted.size());
}

StatusOr<EventProcessor::Counted> EventProcessor::Handle(engine::Unit& u, const StoredEvent& stored,
                                                         const std::vector<Route>& routes) {
  InboundEvent e;
  e.id = stored.id;
  e.type = stored.event_type.value_or("");
  for (const auto& [k, v] : stored.headers.items())
    e.headers.emplace_back(k, v.is_string() ? v.get<std::string>() : "");
  e.body = json::parse(stored.body, nullptr, false);
  if (e.body.is_discarded()) e.body = nullptr;
  // Routes that succeeded in an earlier attempt are not run again.
  std::map<std::string, json> done;
  for (const auto& a : stored.actions) {
    if (a.value("ok", false)) done[a.value("route", "")] = a;
  }
  json actions = json::array();
  std::optional<std::string> error;
  for (const Route& r : routes) {
    const auto& types = r.spec.event_types;
    if (!types.empty() && std::find(types.begin(), types.end(), json(e.type)) == types.end()) continue;
    auto conditions = ParseConditions(r.spec.conditions);
    if (!conditions.ok() || !Holds(*conditions, e)) continue;
    if (auto d = done.find(r.id); d != done.end()) {
      actions.push_back(d->second);
      continue;
    }
    RETURN_IF_ERROR(u.Exec("SAVEPOINT eventhook_action"));
    auto mark = u.Checkpoint();
    auto result = Act(r, e, stored.tenant_id);
    // A statement the action deferred fails here, and is the action's failure.
    if (result.ok()) {
      if (Status released = u.Exec("RELEASE SAVEPOINT eventhook_action").status(); !released.ok()) result = released;
    }
    if (result.ok()) {
      actions.push_back(*result);
      continue;
    }
    if (result.status().code() == StatusCode::kUnavailable) return result.status();  // the database
    u.Rewind(std::move(mark));
    RETURN_IF_ERROR(u.Exec("ROLLBACK TO SAVEPOINT eventhook_action"));
    actions.push_back({{"route", r.id}, {"name", r.spec.name}, {"ok", false}, {"error", result.status().message()}});
    error = "route '" + r.spec.name + "': " + result.status().message();
  }
  std::string status = "DONE";
  int64_t retry_ms = 0;
  if (error) {
    status = stored.attempts >= options_.max_attempts ? "FAILED" : "PENDING";
    retry_ms = std::min(options_.max_retry_ms, options_.first_retry_ms << std::min(stored.attempts - 1, 20));
  }
  RETURN_IF_ERROR(EventhookStore::Finish(u.tx(), stored, status, retry_ms, actions, error));
  Counted c{stored.label,
            error             ? (status == "FAILED" ? "failed" : "retried")
            : actions.empty() ? "unrouted"
                              : "routed",
            -1};
  if (!error) {
    auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    c.seconds = static_cast<double>(std::max<int64_t>(0, now_ms - stored.received_ms)) / 1000.0;
  }
  return c;
}

StatusOr<json> EventProcessor::Act(const Route& route, const InboundEvent& e, const std::string& tenant_id) {
  const json& a = route.spec.action;
  std::string type = Text(a, "type", "");
  engine::TenantId tenant(tenant_id);
  json out = {{"route", route.id}, {"name", route.spec.name}, {"action", type}, {"ok", true}};
  if (type == "start_workflow") {
    auto started = engine_.StartWorkflow(tenant, StartOf(a, a, e, route.id));
    if (!started.ok()) return started.status();
    out["executionId"] = started->execution_id;
    out["created"] = started->created;
  } else if (type == "submit_task") {
    engine::SubmitTaskRequest req;
    req.id = UuidFrom("eventhook-task:" + e.id + ":" + route.id);
    req.kind = Text(a, "kind", "");
    req.queue = Text(a, "queue", "default");
    req.input_json = MapInput(a.contains("input") ? a["input"] : json(nullptr), e).dump();
    auto id = engine_.SubmitTask(tenant, req);
    if (!id.ok()) return id.status();
    out["taskId"] = static_cast<const std::string&>(*id);
  } else if (type == "signal") {
    auto start = StartOf(a["workflow"], a, e, route.id);
    if (!ResolveText(e, a["idempotencyKeyPath"].get<std::string>())) {
      return InvalidArgument("the event has no value at " + a["idempotencyKeyPath"].get<std::string>());
    }
    std::string payload = MapInput(a.contains("input") ? a["input"] : json(nullptr), e).dump();
    auto started = engine_.SignalWithStart(tenant, start, Text(a, "signal", ""), payload);
    if (!started.ok()) return started.status();
    out["executionId"] = started->execution_id;
    out["created"] = started->created;
  } else {
    auto promise = ResolveText(e, a["promiseIdPath"].get<std::string>());
    if (!promise) return InvalidArgument("the event has no promise id at " + a["promiseIdPath"].get<std::string>());
    Status s = Status::Ok();
    if (type == "resolve_promise") {
      s = engine_.ResolvePromise(tenant, engine::PromiseId(*promise),
                                 MapInput(a.contains("input") ? a["input"] : json(nullptr), e).dump());
    } else {
      std::optional<std::string> why;
      if (a.contains("errorPath")) why = ResolveText(e, a["errorPath"].get<std::string>());
      s = engine_.RejectPromise(tenant, engine::PromiseId(*promise), why.value_or(Text(a, "error", "rejected")));
    }
    // Settled before (by an earlier attempt or anyone else): nothing left to do.
    if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;
    out["promiseId"] = *promise;
    out["settled"] = s.ok();
  }
  return out;
}

}  // namespace flovyn::plugins
