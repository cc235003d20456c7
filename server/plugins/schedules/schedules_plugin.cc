#include "schedules_plugin.h"

#include "engine/commands.h"
#include "engine/limits.h"
#include "engine/values.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/http/router.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> schedules_migrations();
}

namespace flovyn::plugins {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr int kMaxBackfill = 1000;  // fire times one backfill request may start

json InstantOrNull(const std::optional<Instant>& t) { return t ? json(FormatInstant(*t)) : json(nullptr); }

json ScheduleJson(const Schedule& s) {
  json w = {{"kind", s.spec.kind}, {"queue", s.spec.queue}, {"input", json::parse(s.spec.input_json)}};
  return {{"id", s.id},
          {"name", s.spec.name},
          {"cron", engine::OrNull(s.spec.cron)},
          {"intervalSeconds", s.spec.cron ? json(nullptr) : json(s.spec.interval_ms / 1000)},
          {"timezone", s.spec.timezone},
          {"startAt", InstantOrNull(s.spec.start_at)},
          {"endAt", InstantOrNull(s.spec.end_at)},
          {"workflow", w},
          {"overlap", OverlapName(s.spec.overlap)},
          {"catchupWindowSeconds", s.spec.catchup_window_ms / 1000},
          {"catchupMaxRuns", s.spec.catchup_max},
          {"paused", s.spec.paused},
          {"nextFireAt", InstantOrNull(s.next_fire_at)},
          {"bufferedFireAt", InstantOrNull(s.buffered_fire_at)},
          {"lastExecutionId", engine::OrNull(s.last_execution_id)},
          {"fires", s.fires},
          {"skips", s.skips},
          {"createdAt", FormatInstant(s.created_at)},
          {"updatedAt", s.updated_at}};
}

json RunJson(const ScheduleRun& r) {
  return {{"fireAt", FormatInstant(r.fire_at)},
          {"trigger", r.trigger},
          {"outcome", r.outcome},
          {"executionId", engine::OrNull(r.execution_id)},
          {"latenessMs", r.lateness_ms},
          {"recordedAt", r.recorded_at}};
}

StatusOr<std::optional<Instant>> InstantField(const json& body, const char* name) {
  auto text = engine::StringField(body, name);
  if (!text.ok()) return text.status();
  if (!*text) return std::optional<Instant>();
  auto t = ParseInstant(**text);
  if (!t.ok()) return InvalidArgument(std::string("'") + name + "': " + t.status().message());
  return std::optional<Instant>(*t);
}

Status ReadTiming(const json& body, ScheduleSpec& s) {
  auto cron = engine::StringField(body, "cron");
  if (!cron.ok()) return cron.status();
  auto interval = engine::IntField(body, "intervalSeconds");
  if (!interval.ok()) return interval.status();
  if (cron->has_value() == interval->has_value()) {
    return InvalidArgument("give exactly one of 'cron' and 'intervalSeconds'");
  }
  s.cron = *cron;
  if (*interval) {
    if (**interval < 1 || **interval > 366LL * 86400) {
      return InvalidArgument("'intervalSeconds' must be between 1 and 31622400");
    }
    s.interval_ms = **interval * 1000;
  }
  auto zone = engine::StringField(body, "timezone");
  if (!zone.ok()) return zone.status();
  s.timezone = zone->value_or("UTC");
  auto start = InstantField(body, "startAt");
  if (!start.ok()) return start.status();
  s.start_at = *start;
  auto end = InstantField(body, "endAt");
  if (!end.ok()) return end.status();
  s.end_at = *end;
  if (s.start_at && s.end_at && *s.end_at <= *s.start_at) return InvalidArgument("'endAt' must be after 'startAt'");
  return Status::Ok();
}

Status ReadPolicies(const json& body, ScheduleSpec& s) {
  auto overlap = engine::StringField(body, "overlap");
  if (!overlap.ok()) return overlap.status();
  if (*overlap) {
    auto o = OverlapFrom(**overlap);
    if (!o) return InvalidArgument("'overlap' is one of skip, buffer_one, allow_all, cancel_previous");
    s.overlap = *o;
  }
  auto window = engine::IntField(body, "catchupWindowSeconds");
  if (!window.ok()) return window.status();
  if (*window) {
    if (**window < 0 || **window > 366LL * 86400) {
      return InvalidArgument("'catchupWindowSeconds' must be between 0 and 31622400");
    }
    s.catchup_window_ms = **window * 1000;
  }
  auto max_runs = engine::IntField(body, "catchupMaxRuns");
  if (!max_runs.ok()) return max_runs.status();
  if (*max_runs) {
    if (**max_runs < 0 || **max_runs > 100) return InvalidArgument("'catchupMaxRuns' must be between 0 and 100");
    s.catchup_max = static_cast<int>(**max_runs);
  }
  if (body.contains("paused")) {
    if (!body["paused"].is_boolean()) return InvalidArgument("'paused' must be true or false");
    s.paused = body["paused"].get<bool>();
  }
  return Status::Ok();
}

StatusOr<ScheduleSpec> SpecFrom(const json& body) {
  ScheduleSpec s;
  auto name = engine::StringField(body, "name");
  if (!name.ok()) return name.status();
  if (!*name) return InvalidArgument("'name' is required");
  RETURN_IF_ERROR(engine::limits::Name(**name, "name"));
  s.name = **name;
  RETURN_IF_ERROR(ReadTiming(body, s));
  RETURN_IF_ERROR(ReadPolicies(body, s));
  if (!body.contains("workflow") || !body["workflow"].is_object()) {
    return InvalidArgument("'workflow' is required: {\"kind\": ..., \"queue\": ..., \"input\": ...}");
  }
  const json& w = body["workflow"];
  engine::StartWorkflowRequest start;
  auto kind = engine::StringField(w, "kind");
  if (!kind.ok()) return kind.status();
  start.kind = kind->value_or("");
  auto queue = engine::StringField(w, "queue");
  if (!queue.ok()) return queue.status();
  start.queue = queue->value_or("default");
  start.input_json = engine::ValueField(w, "input");
  RETURN_IF_ERROR(engine::ValidateStart(start));
  s.kind = start.kind;
  s.queue = start.queue;
  s.input_json = start.input_json;
  auto rule = s.Rule(InstantNow());
  if (!rule.ok()) return rule.status();
  return s;
}

// The first fire time from now on (the start time when later), within the end time.
std::optional<Instant> FirstFire(const ScheduleSpec& spec, const FireRule& rule, Instant now) {
  Instant from = now - std::chrono::milliseconds(1);
  if (spec.start_at && *spec.start_at > now) from = *spec.start_at - std::chrono::milliseconds(1);
  auto next = rule.Next(from);
  if (next && spec.end_at && *next > *spec.end_at) return std::nullopt;
  return next;
}

}  // namespace

std::vector<migrate::Migration> SchedulesPlugin::migrations() const { return generated::schedules_migrations(); }

void AddScheduleSettings(config::Schema& s) {
  s.Add({.key = "schedules.max_per_tenant",
         .type = config::Type::kInt,
         .default_value = "10000",
         .description = "schedules one tenant may have; beyond it creating one answers 429",
         .min_value = 0,
         .max_value = 10000000});
  s.Add({.key = "schedules.max_sleep_ms",
         .type = config::Type::kInt,
         .default_value = "1000",
         .description = "longest the schedule runner sleeps before looking again (it also wakes at the earliest "
                        "fire time and when a schedule changes)",
         .min_value = 10,
         .max_value = 60000});
}

Status SchedulesPlugin::Start(const runtime::Context& ctx) {
  auto* engine = ctx.services.Find<engine::Store>();
  rest_ = ctx.services.Find<engine::RestContext>();
  if (engine == nullptr || rest_ == nullptr) {
    return FailedPrecondition("the schedules plugin needs the engine, started before it");
  }
  max_per_tenant_ = ctx.config.Int("schedules.max_per_tenant");
  store_ = std::make_unique<ScheduleStore>(ctx.pool);
  metrics_ = std::make_unique<ScheduleMetrics>(ctx.metrics);
  runner_ = std::make_unique<ScheduleRunner>(ctx.pool, *engine, metrics_.get(),
                                             std::chrono::milliseconds(ctx.config.Int("schedules.max_sleep_ms")));
  runner_->Start();
  return Status::Ok();
}

void SchedulesPlugin::Stop() {
  if (runner_) runner_->Stop();
}

StatusOr<Schedule> SchedulesPlugin::Named(const Request& req, engine::Action action, engine::Caller* caller,
                                          nlohmann::json* body) {
  auto c = rest_->Admit(req, action);
  if (!c.ok()) return c.status();
  if (req.method == "POST") {  // the body is checked before the schedule is looked up; none is "{}"
    auto parsed = req.body.empty() && body == nullptr ? StatusOr<json>(json::object()) : engine::JsonBody(req);
    if (!parsed.ok()) return parsed.status();
    if (body != nullptr) *body = std::move(*parsed);
  }
  const std::string& id = req.path_params.at("id");
  if (!engine::IsUuid(id)) return NotFound("schedule not found");
  auto s = store_->Get(c->tenant_id, id);
  if (!s.ok()) return s.status();
  if (!*s) return NotFound("schedule not found");
  if (caller != nullptr) *caller = *c;
  return **s;
}

Response SchedulesPlugin::Create(const Request& req) {
  auto caller = rest_->Admit(req, engine::Action::kSchedulesManage);
  if (!caller.ok()) return http::ErrorResponse(caller.status());
  auto body = engine::JsonBody(req);
  if (!body.ok()) return http::ErrorResponse(body.status());
  auto spec = SpecFrom(*body);
  if (!spec.ok()) return http::ErrorResponse(spec.status());
  auto count = store_->Count(caller->tenant_id);
  if (!count.ok()) return http::ErrorResponse(count.status());
  if (*count >= max_per_tenant_) {
    return http::ErrorResponse(ResourceExhausted("the tenant has " + std::to_string(*count) +
                                                 " schedules, the most SCHEDULES__MAX_PER_TENANT allows"));
  }
  Instant now = InstantNow();
  auto rule = spec->Rule(now);
  auto created = store_->Create(caller->tenant_id, *spec, FirstFire(*spec, *rule, now));
  if (!created.ok()) return http::ErrorResponse(created.status());
  runner_->Wake();
  return engine::Json(201, ScheduleJson(*created));
}

Response SchedulesPlugin::List(const Request& req) {
  auto caller = rest_->Admit(req, engine::Action::kSchedulesRead);
  if (!caller.ok()) return http::ErrorResponse(caller.status());
  auto all = store_->List(caller->tenant_id, 1000);
  if (!all.ok()) return http::ErrorResponse(all.status());
  json items = json::array();
  for (const auto& s : *all) items.push_back(ScheduleJson(s));
  return engine::Json(200, {{"items", items}});
}

Response SchedulesPlugin::Get(const Request& req) {
  auto s = Named(req, engine::Action::kSchedulesRead, nullptr);
  if (!s.ok()) return http::ErrorResponse(s.status());
  json out = ScheduleJson(*s);
  json next = json::array();
  auto rule = s->spec.Rule(s->created_at);
  std::optional<Instant> t = s->next_fire_at;
  for (int i = 0; rule.ok() && t && i < 5; ++i) {
    if (s->spec.end_at && *t > *s->spec.end_at) break;
    next.push_back(FormatInstant(*t));
    t = rule->Next(*t);
  }
  out["nextFireTimes"] = next;
  auto runs = store_->Runs(s->id, 20);
  if (!runs.ok()) return http::ErrorResponse(runs.status());
  json recent = json::array();
  for (const auto& r : *runs) recent.push_back(RunJson(r));
  out["recentRuns"] = recent;
  return engine::Json(200, out);
}

Response SchedulesPlugin::Delete(const Request& req) {
  engine::Caller caller;
  auto s = Named(req, engine::Action::kSchedulesManage, &caller);
  if (!s.ok()) return http::ErrorResponse(s.status());
  auto gone = store_->Delete(caller.tenant_id, s->id);
  if (!gone.ok()) return http::ErrorResponse(gone.status());
  return engine::Json(200, {{"id", s->id}, {"deleted", true}});
}

Response SchedulesPlugin::Pause(const Request& req) {
  engine::Caller caller;
  auto s = Named(req, engine::Action::kSchedulesManage, &caller);
  if (!s.ok()) return http::ErrorResponse(s.status());
  auto done = store_->SetPaused(caller.tenant_id, s->id, true, s->next_fire_at);
  if (!done.ok()) return http::ErrorResponse(done.status());
  return engine::Json(200, {{"id", s->id}, {"paused", true}});
}

Response SchedulesPlugin::Resume(const Request& req) {
  engine::Caller caller;
  auto s = Named(req, engine::Action::kSchedulesManage, &caller);
  if (!s.ok()) return http::ErrorResponse(s.status());
  auto rule = s->spec.Rule(s->created_at);
  if (!rule.ok()) return http::ErrorResponse(rule.status());
  // Times missed while paused are not run: the next fire time is counted from now.
  auto next = FirstFire(s->spec, *rule, InstantNow());
  auto done = store_->SetPaused(caller.tenant_id, s->id, false, next);
  if (!done.ok()) return http::ErrorResponse(done.status());
  runner_->Wake();
  return engine::Json(200, {{"id", s->id}, {"paused", false}, {"nextFireAt", InstantOrNull(next)}});
}

Response SchedulesPlugin::Trigger(const Request& req) {
  engine::Caller caller;
  auto s = Named(req, engine::Action::kSchedulesManage, &caller);
  if (!s.ok()) return http::ErrorResponse(s.status());
  auto runs = runner_->Fire(caller.tenant_id, s->id, {InstantNow()}, "manual");
  if (!runs.ok()) return http::ErrorResponse(runs.status());
  return engine::Json(200, RunJson(runs->front()));
}

Response SchedulesPlugin::Backfill(const Request& req) {
  engine::Caller caller;
  json body;
  auto s = Named(req, engine::Action::kSchedulesManage, &caller, &body);
  if (!s.ok()) return http::ErrorResponse(s.status());
  auto from = InstantField(body, "from");
  auto to = InstantField(body, "to");
  if (!from.ok()) return http::ErrorResponse(from.status());
  if (!to.ok()) return http::ErrorResponse(to.status());
  if (!*from || !*to || **to < **from)
    return http::ErrorResponse(InvalidArgument("'from' and 'to' are required, from <= to"));
  auto rule = s->spec.Rule(s->created_at);
  if (!rule.ok()) return http::ErrorResponse(rule.status());
  std::vector<Instant> times;
  for (auto t = rule->Next(**from - std::chrono::milliseconds(1)); t && *t <= **to; t = rule->Next(*t)) {
    if (times.size() == kMaxBackfill) {
      return http::ErrorResponse(InvalidArgument("the range holds more than " + std::to_string(kMaxBackfill) +
                                                 " fire times, the most one backfill starts; split it"));
    }
    times.push_back(*t);
  }
  auto runs = runner_->Fire(caller.tenant_id, s->id, times, "backfill");
  if (!runs.ok()) return http::ErrorResponse(runs.status());
  json items = json::array();
  for (const auto& r : *runs) items.push_back(RunJson(r));
  return engine::Json(200, {{"runs", items}});
}

void SchedulesPlugin::AddRoutes(http::Router& r) {
  auto route = [this](Response (SchedulesPlugin::*fn)(const Request&)) {
    return http::Sync([this, fn](const Request& req) { return (this->*fn)(req); });
  };
  const std::string read(engine::ActionName(engine::Action::kSchedulesRead));
  const std::string manage(engine::ActionName(engine::Action::kSchedulesManage));
  const std::string base = "/api/tenants/{tenant}/schedules";
  r.Add("POST", base, route(&SchedulesPlugin::Create),
        {.summary = "Create a schedule (cron in a time zone, or an interval)",
         .tag = "schedules",
         .has_body = true,
         .permission = manage});
  r.Add("GET", base, route(&SchedulesPlugin::List),
        {.summary = "List schedules", .tag = "schedules", .permission = read});
  r.Add(
      "GET", base + "/{id}", route(&SchedulesPlugin::Get),
      {.summary = "A schedule with its next five fire times and recent runs", .tag = "schedules", .permission = read});
  r.Add("DELETE", base + "/{id}", route(&SchedulesPlugin::Delete),
        {.summary = "Delete a schedule (its started workflows go on)", .tag = "schedules", .permission = manage});
  r.Add("POST", base + "/{id}/pause", route(&SchedulesPlugin::Pause),
        {.summary = "Pause a schedule", .tag = "schedules", .permission = manage});
  r.Add("POST", base + "/{id}/resume", route(&SchedulesPlugin::Resume),
        {.summary = "Resume a schedule from now (times missed while paused are not run)",
         .tag = "schedules",
         .permission = manage});
  r.Add("POST", base + "/{id}/trigger", route(&SchedulesPlugin::Trigger),
        {.summary = "Start the schedule's workflow now (under its overlap policy)",
         .tag = "schedules",
         .permission = manage});
  r.Add("POST", base + "/{id}/backfill", route(&SchedulesPlugin::Backfill),
        {.summary = "Start the workflow for every fire time in a past range (each at most once)",
         .tag = "schedules",
         .has_body = true,
         .permission = manage});
}

}  // namespace flovyn::plugins
