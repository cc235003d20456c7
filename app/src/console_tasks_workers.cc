// The console's task list and registered workers.
#include <algorithm>

#include "console_common.h"

namespace flovyn::app {

Response ConsoleModule::Tasks(const Request& req, Visit& v) {
  std::string status = Query(req, "status"), cursor = Query(req, "cursor");
  if (!status.empty() && std::find(kTaskStatuses.begin(), kTaskStatuses.end(), status) == kTaskStatuses.end()) {
    return Refusal(400, "Bad filter", "Unknown task status.");
  }
  std::string q = "/tasks?limit=25";
  if (!status.empty()) q += "&status=" + UrlEncode(status);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  auto list = backend_->Call(*v.session, "GET", q);
  return WithBackend(v.Frame("Tasks", "tasks"), list.status(), [&] {
    std::string h =
        "<h1>Tasks</h1><form method=\"get\" action=\"/tasks\" class=\"filters\"><label>Status <select "
        "name=\"status\">" +
        Options(kTaskStatuses, status) +
        "</select></label><button type=\"submit\">Filter</button></form><div class=\"table-wrap\"><table "
        "class=\"list\"><thead><tr><th>Kind</th><th>Status</th><th>Attempt</th><th>Workflow</th>"
        "<th>Created</th></tr></thead><tbody>";
    for (const auto& t : (*list)["items"]) {
      std::string wf = Str(t, "workflowId");
      h += "<tr><td>" + Esc(Str(t, "kind")) + "</td><td>" + StatusBadge(Str(t, "status")) + "</td><td>" +
           std::to_string(t.value("attempt", 0)) + " / " + std::to_string(t.value("maxAttempts", 0)) + "</td><td>" +
           (wf.empty() ? std::string("—")
                       : "<a class=\"mono\" href=\"/workflows/" + Esc(wf) + "\">" + Esc(wf.substr(0, 8)) + "</a>") +
           "</td><td>" + Esc(Str(t, "createdAt")) + "</td></tr>";
    }
    if ((*list)["items"].empty()) h += "<tr><td colspan=\"5\" class=\"muted\">No tasks.</td></tr>";
    h += "</tbody></table></div>";
    if ((*list)["nextCursor"].is_string()) {
      std::string next = "/tasks?cursor=" + UrlEncode((*list)["nextCursor"].get<std::string>());
      if (!status.empty()) next += "&status=" + UrlEncode(status);
      h += "<p class=\"pager\"><a href=\"" + Esc(next) + "\" rel=\"next\">Older →</a></p>";
    }
    return h;
  });
}

Response ConsoleModule::Workers(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/workers");
  return WithBackend(v.Frame("Workers", "workers"), list.status(), [&] {
    std::string h =
        "<h1>Workers</h1><div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Name</th>"
        "<th>Queues</th><th>Kinds</th><th>Last heartbeat</th></tr></thead><tbody>";
    auto joined = [](const json& a) {
      std::string s;
      if (a.is_array())
        for (const auto& x : a)
          if (x.is_string()) s += (s.empty() ? "" : ", ") + x.get<std::string>();
      return s;
    };
    for (const auto& w : (*list)["items"]) {
      double age = w.contains("heartbeatAgeSeconds") && w["heartbeatAgeSeconds"].is_number()
                       ? w["heartbeatAgeSeconds"].get<double>()
                       : -1;
      std::string ago = age < 0 ? "—" : std::to_string(static_cast<int64_t>(age)) + " s ago";
      h += "<tr><td>" + Esc(Str(w, "name")) + " <span class=\"muted\">" + Esc(Str(w, "version")) + "</span></td><td>" +
           Esc(joined(w["queues"])) + "</td><td>" + Esc(joined(w["workflowKinds"])) +
           (w["taskKinds"].empty() ? "" : "; " + Esc(joined(w["taskKinds"]))) + "</td><td class=\"" +
           (age > 60 ? "stale" : "fresh") + "\">" + Esc(ago) + "</td></tr>";
    }
    if ((*list)["items"].empty()) h += "<tr><td colspan=\"4\" class=\"muted\">No workers registered.</td></tr>";
    return h + "</tbody></table></div>";
  });
}

}  // namespace flovyn::app
