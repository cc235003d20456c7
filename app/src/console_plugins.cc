// The console's pages for the server's plugins: schedules (list, detail with the next five fire
// times and recent runs, pause / resume / trigger now) and event hooks (sources, routes and the
// recent events with their outcome and a reprocess button).
#include "console_common.h"

namespace flovyn::app {

namespace {

std::string Rule(const json& s) {
  std::string rule = Str(s, "cron");
  if (rule.empty()) {
    return "every " + std::to_string(s.value("intervalSeconds", int64_t{0})) + " s";
  }
  return rule + " (" + Str(s, "timezone") + ")";
}

json ScheduleRow(const json& s) {
  const json& w = s.contains("workflow") ? s["workflow"] : json::object();
  std::string next = Str(s, "nextFireAt");
  return {{"id", Str(s, "id")},
          {"name", Str(s, "name")},
          {"rule", Rule(s)},
          {"kind", Str(w, "kind")},
          {"queue", Str(w, "queue")},
          {"paused", s.value("paused", false)},
          {"nextFireAt", next.empty() ? "—" : next},
          {"fires", s.value("fires", int64_t{0})},
          {"skips", s.value("skips", int64_t{0})},
          {"overlap", Str(s, "overlap")},
          {"catchup", "missed times within " + std::to_string(s.value("catchupWindowSeconds", int64_t{0})) +
                          " s run, at most " + std::to_string(s.value("catchupMaxRuns", 0))}};
}

// What an event's processing did, in a line.
std::string Outcome(const json& e) {
  std::string error = Str(e, "error");
  if (!error.empty()) return error;
  const json& actions = e.contains("actions") ? e["actions"] : json::array();
  if (Str(e, "status") == "PENDING") return "waiting to be processed";
  if (actions.empty()) return "no route matched";
  std::string out;
  for (const auto& a : actions) {
    out += (out.empty() ? "" : "; ") + Str(a, "name") + ": " + Str(a, "action");
    if (a.contains("executionId")) out += " " + Str(a, "executionId").substr(0, 8);
  }
  return out;
}

bool KnownAction(const std::string& a) { return a == "pause" || a == "resume" || a == "trigger"; }

}  // namespace

Response ConsoleModule::Schedules(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/schedules");
  return WithBackend(v.Frame("Schedules", "schedules"), list.status(), [&] {
    json rows = json::array();
    for (const auto& s : (*list)["items"]) {
      json row = ScheduleRow(s);
      row["csrf"] = v.csrf;
      rows.push_back(std::move(row));
    }
    return Render("schedules", {{"schedules", rows}, {"csrf", v.csrf}});
  });
}

Response ConsoleModule::ScheduleDetail(const Request& req, Visit& v) {
  auto s = backend_->Call(*v.session, "GET", "/schedules/" + UrlEncode(req.path_params.at("id")));
  return WithBackend(v.Frame("Schedule", "schedules"), s.status(), [&] {
    json view = ScheduleRow(*s);
    view["csrf"] = v.csrf;
    view["next"] = s->contains("nextFireTimes") ? (*s)["nextFireTimes"] : json::array();
    json runs = json::array();
    for (const auto& r : (*s)["recentRuns"]) {
      std::string exec = Str(r, "executionId");
      runs.push_back({{"fireAt", Str(r, "fireAt")},
                      {"trigger", Str(r, "trigger")},
                      {"outcome", Str(r, "outcome")},
                      {"executionId", exec},
                      {"shortExecutionId", exec.substr(0, 8)},
                      {"lateness", std::to_string(r.value("latenessMs", int64_t{0})) + " ms"}});
    }
    view["runs"] = runs;
    return Render("schedule", {{"schedule", view}});
  });
}

Response ConsoleModule::ScheduleAction(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  const std::string& action = req.path_params.at("action");
  if (!KnownAction(action)) return Refusal(404, "Not found", "No such schedule action.");
  json body = json::object();
  auto r = backend_->Call(*v.session, "POST", "/schedules/" + UrlEncode(id) + "/" + action, &body);
  if (!r.ok()) return WithBackend(v.Frame("Schedule", "schedules"), r.status(), [] { return std::string(); });
  return Redirect("/schedules/" + UrlEncode(id));
}

Response ConsoleModule::Eventhooks(const Request&, Visit& v) {
  auto sources = backend_->Call(*v.session, "GET", "/eventhook/sources");
  StatusOr<json> routes = sources.ok() ? backend_->Call(*v.session, "GET", "/eventhook/routes") : sources.status();
  StatusOr<json> events =
      routes.ok() ? backend_->Call(*v.session, "GET", "/eventhook/events?limit=50") : routes.status();
  auto fr = v.Frame("Event hooks", "eventhooks");
  return WithBackend(fr, events.status(), [&] {
    json src = json::array(), rts = json::array(), evs = json::array();
    std::map<std::string, std::string> slugs;
    for (const auto& s : (*sources)["items"]) {
      slugs[Str(s, "id")] = Str(s, "slug");
      src.push_back(
          {{"slug", Str(s, "slug")},
           {"enabled", s.value("enabled", true)},
           {"verifier", Str(s["verifier"], "type") +
                            (Str(s["verifier"], "scheme").empty() ? "" : " (" + Str(s["verifier"], "scheme") + ")")},
           {"ingestPath", Str(s, "ingestPath")},
           {"rejected", s.value("rejected", int64_t{0})}});
    }
    for (const auto& r : (*routes)["items"]) {
      std::string types = Joined(r["eventTypes"]);
      rts.push_back({{"name", Str(r, "name")},
                     {"enabled", r.value("enabled", true)},
                     {"source", slugs[Str(r, "sourceId")]},
                     {"types", types.empty() ? "any" : types},
                     {"action", Str(r["action"], "type") + " " + Str(r["action"], "kind")}});
    }
    for (const auto& e : (*events)["items"]) {
      json row = Badge(Str(e, "status"));
      row.update({{"id", Str(e, "id")},
                  {"receivedAt", Str(e, "receivedAt")},
                  {"source", Str(e, "source")},
                  {"type", Str(e, "type")},
                  {"attempts", e.value("attempts", 0)},
                  {"outcome", Outcome(e)},
                  {"csrf", v.csrf}});
      evs.push_back(std::move(row));
    }
    return Render("eventhooks", {{"sources", src}, {"routes", rts}, {"events", evs}});
  });
}

Response ConsoleModule::ReprocessEvent(const Request& req, Visit& v) {
  json body = json::object();
  auto r = backend_->Call(*v.session, "POST", "/eventhook/events/" + UrlEncode(req.path_params.at("id")) + "/reprocess",
                          &body);
  if (!r.ok()) return WithBackend(v.Frame("Event hooks", "eventhooks"), r.status(), [] { return std::string(); });
  return Redirect("/eventhooks");
}

}  // namespace flovyn::app
