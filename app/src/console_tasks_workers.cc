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
    json tasks = json::array();
    for (const auto& t : (*list)["items"]) {
      json row = Badge(Str(t, "status"));
      std::string wf = Str(t, "workflowId");
      row.update({{"kind", Str(t, "kind")},
                  {"attempt", t.value("attempt", 0)},
                  {"maxAttempts", t.value("maxAttempts", 0)},
                  {"workflowId", wf},
                  {"shortWorkflowId", wf.substr(0, 8)},
                  {"createdAt", Str(t, "createdAt")}});
      tasks.push_back(std::move(row));
    }
    return Render("tasks", {{"statuses", StatusOptions(kTaskStatuses, status)},
                            {"tasks", tasks},
                            {"next", NextPage(*list, "/tasks", {{"status", status}})}});
  });
}

Response ConsoleModule::Workers(const Request&, Visit& v) {
  auto list = backend_->Call(*v.session, "GET", "/workers");
  return WithBackend(v.Frame("Workers", "workers"), list.status(), [&] {
    json workers = json::array();
    for (const auto& w : (*list)["items"]) {
      double age = w.contains("heartbeatAgeSeconds") && w["heartbeatAgeSeconds"].is_number()
                       ? w["heartbeatAgeSeconds"].get<double>()
                       : -1;
      workers.push_back({{"name", Str(w, "name")},
                         {"version", Str(w, "version")},
                         {"queues", Joined(w["queues"])},
                         {"workflowKinds", Joined(w["workflowKinds"])},
                         {"taskKinds", Joined(w["taskKinds"])},
                         {"freshness", age > 60 ? "stale" : "fresh"},
                         {"ago", age < 0 ? "—" : std::to_string(static_cast<int64_t>(age)) + " s ago"}});
    }
    return Render("workers", {{"workers", workers}});
  });
}

}  // namespace flovyn::app
