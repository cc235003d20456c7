// The eventhook plugin's management REST routes: sources (the secret shown once), routes, and
// received events with their outcome and a reprocess action.
#include <charconv>

#include "engine/limits.h"
#include "engine/values.h"
#include "eventhook_plugin.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/http/router.h"

namespace flovyn::plugins {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr int kMaxBodyCeiling = 1024 * 1024;  // the HTTP server refuses larger bodies anyway

json SourceJson(const Source& s, const std::string& tenant_slug) {
  return {{"id", s.id},
          {"slug", s.spec.slug},
          {"enabled", s.spec.enabled},
          {"verifier", s.spec.verifier.ToJson()},
          {"idempotencyPaths", s.spec.idempotency_paths},
          {"eventTypePath", engine::OrNull(s.spec.event_type_path)},
          {"maxBodyBytes", s.spec.max_body_bytes},
          {"ratePerSecond", s.spec.rate_per_second},
          {"burst", s.spec.burst},
          {"rejected", s.rejected},
          {"ingestPath", "/api/tenants/" + tenant_slug + "/eventhook/in/" + s.spec.slug},
          {"createdAt", s.created_at}};
}

json RouteJson(const Route& r) {
  return {{"id", r.id},
          {"sourceId", r.spec.source_id},
          {"name", r.spec.name},
          {"enabled", r.spec.enabled},
          {"eventTypes", r.spec.event_types},
          {"conditions", r.spec.conditions},
          {"action", r.spec.action},
          {"createdAt", r.created_at}};
}

json EventJson(const StoredEvent& e, bool with_body) {
  json out = {{"id", e.id},
              {"sourceId", e.source_id},
              {"source", e.label},
              {"dedupKey", engine::OrNull(e.dedup_key)},
              {"type", engine::OrNull(e.event_type)},
              {"receivedAt", e.received_at},
              {"status", e.status},
              {"attempts", e.attempts},
              {"actions", e.actions},
              {"error", engine::OrNull(e.error)},
              {"processedAt", engine::OrNull(e.processed_at)}};
  if (with_body) {
    out["headers"] = e.headers;
    out["body"] = e.body;
  }
  return out;
}

StatusOr<std::vector<std::string>> Paths(const json& body) {
  std::vector<std::string> out;
  if (!body.contains("idempotencyPaths")) return out;
  const json& p = body["idempotencyPaths"];
  if (!p.is_array() || p.size() > 10) return InvalidArgument("'idempotencyPaths' must be an array of at most 10 paths");
  for (const auto& x : p) {
    if (!x.is_string()) return InvalidArgument("'idempotencyPaths' must hold paths");
    RETURN_IF_ERROR(ValidatePath(x.get<std::string>()));
    out.push_back(x.get<std::string>());
  }
  return out;
}

StatusOr<SourceSpec> SourceFrom(const json& body) {
  SourceSpec s;
  auto slug = engine::StringField(body, "slug");
  if (!slug.ok()) return slug.status();
  if (!*slug) return InvalidArgument("'slug' is required");
  RETURN_IF_ERROR(engine::limits::Name(**slug, "slug"));
  for (char c : **slug) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return InvalidArgument("'slug' may hold letters, digits, '-' and '_' (it is part of the ingest URL)");
    }
  }
  s.slug = **slug;
  auto verifier = ParseVerifier(body.contains("verifier") ? body["verifier"] : json(nullptr));
  if (!verifier.ok()) return verifier.status();
  s.verifier = *verifier;
  auto paths = Paths(body);
  if (!paths.ok()) return paths.status();
  s.idempotency_paths = *paths;
  auto type_path = engine::StringField(body, "eventTypePath");
  if (!type_path.ok()) return type_path.status();
  if (*type_path) RETURN_IF_ERROR(ValidatePath(**type_path));
  s.event_type_path = *type_path;
  auto max_body = engine::IntField(body, "maxBodyBytes");
  auto rate = engine::IntField(body, "ratePerSecond");
  auto burst = engine::IntField(body, "burst");
  for (const auto* f : {&max_body, &rate, &burst}) {
    if (!f->ok()) return f->status();
  }
  s.max_body_bytes = static_cast<int>(max_body->value_or(s.max_body_bytes));
  s.rate_per_second = static_cast<double>(rate->value_or(100));
  s.burst = static_cast<int>(burst->value_or(std::max<int64_t>(1, rate->value_or(100) * 2)));
  if (s.max_body_bytes < 1 || s.max_body_bytes > kMaxBodyCeiling) {
    return InvalidArgument("'maxBodyBytes' must be between 1 and 1048576");
  }
  if (s.rate_per_second < 1 || s.rate_per_second > 100000 || s.burst < 1 || s.burst > 1000000) {
    return InvalidArgument("'ratePerSecond' must be between 1 and 100000 and 'burst' between 1 and 1000000");
  }
  return s;
}

StatusOr<RouteSpec> RouteFrom(const json& body) {
  RouteSpec r;
  auto source = engine::StringField(body, "sourceId");
  auto name = engine::StringField(body, "name");
  if (!source.ok()) return source.status();
  if (!name.ok()) return name.status();
  if (!*source || !engine::IsUuid(**source)) return InvalidArgument("'sourceId' (a source's id) is required");
  if (!*name) return InvalidArgument("'name' is required");
  RETURN_IF_ERROR(engine::limits::Name(**name, "name"));
  r.source_id = **source;
  r.name = **name;
  if (body.contains("eventTypes")) {
    r.event_types = body["eventTypes"];
    if (!r.event_types.is_array() || r.event_types.size() > 50) {
      return InvalidArgument("'eventTypes' must be an array of at most 50 strings");
    }
    for (const auto& t : r.event_types) {
      if (!t.is_string()) return InvalidArgument("'eventTypes' must hold strings");
    }
  }
  if (body.contains("conditions")) r.conditions = body["conditions"];
  auto conditions = ParseConditions(r.conditions);
  if (!conditions.ok()) return conditions.status();
  r.action = body.contains("action") ? body["action"] : json(nullptr);
  RETURN_IF_ERROR(ValidateAction(r.action));
  if (r.action.dump().size() > 16384) return InvalidArgument("'action' is over 16 KiB");
  if (body.contains("enabled")) {
    if (!body["enabled"].is_boolean()) return InvalidArgument("'enabled' must be true or false");
    r.enabled = body["enabled"].get<bool>();
  }
  return r;
}

// The admitted caller for an {id} route: its tenant, the checked id and (for a POST) the body.
struct Target {
  engine::Caller caller;
  std::string id;
  json body;
};

}  // namespace

namespace {
StatusOr<Target> Admit(engine::RestContext& rest, const Request& req, engine::Action action, const char* what) {
  auto c = rest.Admit(req, action);
  if (!c.ok()) return c.status();
  Target t{*c, req.path_params.count("id") != 0 ? req.path_params.at("id") : "", json::object()};
  if (req.method == "POST") {
    if (!req.body.empty() || req.path_params.count("id") == 0) {
      auto body = engine::JsonBody(req);
      if (!body.ok()) return body.status();
      t.body = std::move(*body);
    }
  }
  if (req.path_params.count("id") != 0 && !engine::IsUuid(t.id)) return NotFound(std::string(what) + " not found");
  return t;
}

template <typename T>
Response Found(StatusOr<std::optional<T>> v, const char* what, const std::function<json(const T&)>& view) {
  if (!v.ok()) return http::ErrorResponse(v.status());
  if (!*v) return http::ErrorResponse(NotFound(std::string(what) + " not found"));
  return engine::Json(200, view(**v));
}

Response Done(StatusOr<bool> v, const char* what, const std::string& id, json extra) {
  if (!v.ok()) return http::ErrorResponse(v.status());
  if (!*v) return http::ErrorResponse(NotFound(std::string(what) + " not found"));
  extra["id"] = id;
  return engine::Json(200, extra);
}
}  // namespace

Response EventhookPlugin::CreateSource(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "source");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto spec = SourceFrom(t->body);
  if (!spec.ok()) return http::ErrorResponse(spec.status());
  auto secret = NewSecret(t->caller.tenant_id, spec->verifier, t->body);
  if (!secret.ok()) return http::ErrorResponse(secret.status());
  auto count = store_->CountSources(t->caller.tenant_id);
  if (!count.ok()) return http::ErrorResponse(count.status());
  if (*count >= max_sources_) {
    return http::ErrorResponse(ResourceExhausted("the tenant has " + std::to_string(*count) +
                                                 " event sources, the most EVENTHOOK__MAX_SOURCES_PER_TENANT allows"));
  }
  auto created = store_->CreateSource(t->caller.tenant_id, *spec, secret->first);
  if (!created.ok()) return http::ErrorResponse(created.status());
  json out = SourceJson(*created, req.path_params.at("tenant"));
  if (!secret->second.empty()) out["secret"] = secret->second;  // shown in this response only
  return engine::Json(201, out);
}

Response EventhookPlugin::ListSources(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "source");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto all = store_->ListSources(t->caller.tenant_id);
  if (!all.ok()) return http::ErrorResponse(all.status());
  json items = json::array();
  for (const auto& s : *all) items.push_back(SourceJson(s, req.path_params.at("tenant")));
  return engine::Json(200, {{"items", items}});
}

Response EventhookPlugin::GetSource(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "source");
  if (!t.ok()) return http::ErrorResponse(t.status());
  std::string slug = req.path_params.at("tenant");
  return Found<Source>(store_->GetSource(t->caller.tenant_id, t->id), "source",
                       [&](const Source& s) { return SourceJson(s, slug); });
}

Response EventhookPlugin::EnableSource(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "source");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto existing = store_->GetSource(t->caller.tenant_id, t->id);
  if (!existing.ok()) return http::ErrorResponse(existing.status());
  if (!*existing) return http::ErrorResponse(NotFound("source not found"));
  if (!t->body.contains("enabled") || !t->body["enabled"].is_boolean()) {
    return http::ErrorResponse(InvalidArgument("'enabled' (true or false) is required"));
  }
  bool enabled = t->body["enabled"].get<bool>();
  return Done(store_->SetSourceEnabled(t->caller.tenant_id, t->id, enabled), "source", t->id, {{"enabled", enabled}});
}

Response EventhookPlugin::DeleteSource(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "source");
  if (!t.ok()) return http::ErrorResponse(t.status());
  return Done(store_->DeleteSource(t->caller.tenant_id, t->id), "source", t->id, {{"deleted", true}});
}

Response EventhookPlugin::CreateRoute(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "route");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto spec = RouteFrom(t->body);
  if (!spec.ok()) return http::ErrorResponse(spec.status());
  auto created = store_->CreateRoute(t->caller.tenant_id, *spec);
  if (!created.ok()) return http::ErrorResponse(created.status());
  return engine::Json(201, RouteJson(*created));
}

Response EventhookPlugin::ListRoutes(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "route");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto all = store_->ListRoutes(t->caller.tenant_id);
  if (!all.ok()) return http::ErrorResponse(all.status());
  json items = json::array();
  for (const auto& r : *all) items.push_back(RouteJson(r));
  return engine::Json(200, {{"items", items}});
}

Response EventhookPlugin::GetRoute(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "route");
  if (!t.ok()) return http::ErrorResponse(t.status());
  return Found<Route>(store_->GetRoute(t->caller.tenant_id, t->id), "route", RouteJson);
}

Response EventhookPlugin::DeleteRoute(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "route");
  if (!t.ok()) return http::ErrorResponse(t.status());
  return Done(store_->DeleteRoute(t->caller.tenant_id, t->id), "route", t->id, {{"deleted", true}});
}

Response EventhookPlugin::ListEvents(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "event");
  if (!t.ok()) return http::ErrorResponse(t.status());
  EventFilter f;
  if (auto it = req.query.find("source"); it != req.query.end()) {
    if (!engine::IsUuid(it->second)) return http::ErrorResponse(InvalidArgument("'source' must be a source's id"));
    f.source_id = it->second;
  }
  if (auto it = req.query.find("status"); it != req.query.end()) {
    if (it->second != "PENDING" && it->second != "DONE" && it->second != "FAILED") {
      return http::ErrorResponse(InvalidArgument("'status' is one of PENDING, DONE, FAILED"));
    }
    f.status = it->second;
  }
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    int n = 0;
    auto [end, err] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
    if (err != std::errc() || end != it->second.data() + it->second.size() || n < 1 || n > 500) {
      return http::ErrorResponse(InvalidArgument("'limit' must be between 1 and 500"));
    }
    f.limit = n;
  }
  auto all = store_->ListEvents(t->caller.tenant_id, f);
  if (!all.ok()) return http::ErrorResponse(all.status());
  json items = json::array();
  for (const auto& e : *all) items.push_back(EventJson(e, false));
  return engine::Json(200, {{"items", items}});
}

Response EventhookPlugin::GetEvent(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksRead, "event");
  if (!t.ok()) return http::ErrorResponse(t.status());
  return Found<StoredEvent>(store_->GetEvent(t->caller.tenant_id, t->id), "event",
                            [](const StoredEvent& e) { return EventJson(e, true); });
}

Response EventhookPlugin::Reprocess(const Request& req) {
  auto t = Admit(*rest_, req, engine::Action::kEventhooksManage, "event");
  if (!t.ok()) return http::ErrorResponse(t.status());
  auto r = store_->Reprocess(t->caller.tenant_id, t->id);
  if (r.ok() && *r) processor_->Wake();
  return Done(r, "event", t->id, {{"status", "PENDING"}});
}

void EventhookPlugin::AddRoutes(http::Router& r) {
  auto route = [this](Response (EventhookPlugin::*fn)(const Request&)) {
    return http::Sync([this, fn](const Request& req) { return (this->*fn)(req); });
  };
  const std::string read(engine::ActionName(engine::Action::kEventhooksRead));
  const std::string manage(engine::ActionName(engine::Action::kEventhooksManage));
  const std::string base = "/api/tenants/{tenant}/eventhook";
  const char* tag = "eventhook";
  r.Add("POST", base + "/in/{source}", route(&EventhookPlugin::Ingest),
        {.summary = "Receive a delivery (authenticated by the source's verifier, not by a user): 202 once stored, "
                    "200 for a duplicate",
         .tag = tag,
         .has_body = true});
  r.Add("POST", base + "/sources", route(&EventhookPlugin::CreateSource),
        {.summary = "Create an event source; its secret is shown only in this response",
         .tag = tag,
         .has_body = true,
         .permission = manage});
  r.Add("GET", base + "/sources", route(&EventhookPlugin::ListSources),
        {.summary = "List event sources (never their secrets)", .tag = tag, .permission = read});
  r.Add("GET", base + "/sources/{id}", route(&EventhookPlugin::GetSource),
        {.summary = "An event source", .tag = tag, .permission = read});
  r.Add("POST", base + "/sources/{id}/enabled", route(&EventhookPlugin::EnableSource),
        {.summary = "Enable or disable a source", .tag = tag, .has_body = true, .permission = manage});
  r.Add("DELETE", base + "/sources/{id}", route(&EventhookPlugin::DeleteSource),
        {.summary = "Delete a source with its routes and events", .tag = tag, .permission = manage});
  r.Add("POST", base + "/routes", route(&EventhookPlugin::CreateRoute),
        {.summary = "Create a route from a source's events to an action",
         .tag = tag,
         .has_body = true,
         .permission = manage});
  r.Add("GET", base + "/routes", route(&EventhookPlugin::ListRoutes),
        {.summary = "List routes", .tag = tag, .permission = read});
  r.Add("GET", base + "/routes/{id}", route(&EventhookPlugin::GetRoute),
        {.summary = "A route", .tag = tag, .permission = read});
  r.Add("DELETE", base + "/routes/{id}", route(&EventhookPlugin::DeleteRoute),
        {.summary = "Delete a route", .tag = tag, .permission = manage});
  r.Add("GET", base + "/events", route(&EventhookPlugin::ListEvents),
        {.summary = "Received events, newest first, with their outcome",
         .tag = tag,
         .query = {"source", "status", "limit"},
         .permission = read});
  r.Add("GET", base + "/events/{id}", route(&EventhookPlugin::GetEvent),
        {.summary = "A received event with its headers, body and actions", .tag = tag, .permission = read});
  r.Add("POST", base + "/events/{id}/reprocess", route(&EventhookPlugin::Reprocess),
        {.summary = "Process an event again (its actions are idempotent)", .tag = tag, .permission = manage});
}

}  // namespace flovyn::plugins
