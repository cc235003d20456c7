// The console's workflow pages: the overview, the list with its filters, starting one, one
// execution with its history, cancelling it and settling its promises.
#include <algorithm>

#include "console_common.h"

namespace flovyn::app {

namespace {
std::string WorkflowRows(const json& items) {
  std::string h =
      "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th>Kind</th><th>Status</th>"
      "<th>Queue</th><th>Created</th><th>Execution</th></tr></thead><tbody>";
  for (const auto& w : items) {
    std::string id = Str(w, "id");
    h += "<tr><td><a href=\"/workflows/" + Esc(id) + "\">" + Esc(Str(w, "kind")) + "</a></td><td>" +
         StatusBadge(Str(w, "status")) + "</td><td>" + Esc(Str(w, "queue")) + "</td><td>" + Esc(Str(w, "createdAt")) +
         "</td><td class=\"mono\">" + Esc(id.substr(0, 8)) + "</td></tr>";
  }
  if (items.empty()) h += "<tr><td colspan=\"5\" class=\"muted\">No workflows yet.</td></tr>";
  return h + "</tbody></table></div>";
}
}  // namespace

Response ConsoleModule::Overview(const Request&, Visit& v) {
  auto counts = backend_->Call(*v.session, "GET", "/workflow-counts");
  StatusOr<json> recent = counts.ok() ? backend_->Call(*v.session, "GET", "/workflows?limit=10") : counts.status();
  return WithBackend(v.Frame("Overview", "overview"), recent.status(), [&] {
    std::string h = "<h1>Overview</h1><div class=\"cards\">";
    for (const auto& s : kWorkflowStatuses) {
      int64_t n = (*counts)["counts"].value(s, 0);
      h += "<a class=\"card\" href=\"/workflows?status=";
      h += s + "\"><span class=\"count\" data-status=\"" + s + "\">" + std::to_string(n);
      h += "</span><span class=\"label\">" + StatusBadge(s) + "</span></a>";
    }
    h += "</div><h2>Recent workflows</h2>" + WorkflowRows((*recent)["items"]);
    return h;
  });
}

Response ConsoleModule::Workflows(const Request& req, Visit& v) {
  std::string status = Query(req, "status"), kind = Query(req, "kind"), cursor = Query(req, "cursor");
  if (!status.empty() &&
      std::find(kWorkflowStatuses.begin(), kWorkflowStatuses.end(), status) == kWorkflowStatuses.end()) {
    return Refusal(400, "Bad filter", "Unknown workflow status.");
  }
  std::string q = "/workflows?limit=25";
  if (!status.empty()) q += "&status=" + UrlEncode(status);
  if (!kind.empty()) q += "&kind=" + UrlEncode(kind);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  auto list = backend_->Call(*v.session, "GET", q);
  return WithBackend(v.Frame("Workflows", "workflows"), list.status(), [&] {
    std::string h =
        "<h1>Workflows</h1><form method=\"get\" action=\"/workflows\" class=\"filters\">"
        "<label>Status <select name=\"status\">" +
        Options(kWorkflowStatuses, status) + "</select></label><label>Kind <input name=\"kind\" value=\"" + Esc(kind) +
        "\"></label><button type=\"submit\">Filter</button></form>";
    h += WorkflowRows((*list)["items"]);
    if ((*list)["nextCursor"].is_string()) {
      std::string next = "/workflows?cursor=" + UrlEncode((*list)["nextCursor"].get<std::string>());
      if (!status.empty()) next += "&status=" + UrlEncode(status);
      if (!kind.empty()) next += "&kind=" + UrlEncode(kind);
      h += "<p class=\"pager\"><a href=\"" + Esc(next) + "\" rel=\"next\">Older →</a></p>";
    }
    h += "<h2>Start a workflow</h2><form method=\"post\" action=\"/workflows\" class=\"stack\" id=\"start-workflow\">" +
         CsrfField(v.csrf) +
         "<label>Kind <input name=\"kind\" required maxlength=\"200\"></label>"
         "<label>Queue <input name=\"queue\" value=\"default\" maxlength=\"200\"></label>"
         "<label>Input (JSON) <textarea name=\"input\" rows=\"4\">{}</textarea></label>"
         "<button type=\"submit\">Start</button></form>";
    return h;
  });
}

Response ConsoleModule::StartWorkflow(const Request&, Visit& v) {
  std::string kind = Field(v.form, "kind"), queue = Field(v.form, "queue"), input = Field(v.form, "input");
  auto fr = v.Frame("Workflows", "workflows");
  json in = input.empty() ? json(nullptr) : json::parse(input, nullptr, false);
  if (kind.empty())
    fr.error = "Name the workflow kind to start.";
  else if (in.is_discarded())
    fr.error = "The input is not valid JSON.";
  if (!fr.error.empty()) return Html(400, Layout(fr, "<h1>Workflows</h1><p><a href=\"/workflows\">Back</a></p>"));
  json body = {{"kind", kind}, {"queue", queue.empty() ? "default" : queue}, {"input", in}};
  auto r = backend_->Call(*v.session, "POST", "/workflows", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(Str(*r, "id")));
}

Response ConsoleModule::WorkflowDetail(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  auto w = backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id));
  StatusOr<json> events =
      w.ok() ? backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id) + "/events") : w.status();
  auto fr = v.Frame("Workflow", "workflows");
  if (w.ok() && !Terminal(Str(*w, "status"))) fr.refresh_secs = 3;
  return WithBackend(fr, events.status(), [&] {
    const json& x = *w;
    std::string status = Str(x, "status");
    std::string h = "<p class=\"crumbs\"><a href=\"/workflows\">Workflows</a> /</p><h1>" + Esc(Str(x, "kind")) + " " +
                    StatusBadge(status) + "</h1>";
    h += "<dl class=\"facts\"><dt>Execution</dt><dd class=\"mono\">" + Esc(Str(x, "id")) + "</dd><dt>Queue</dt><dd>" +
         Esc(Str(x, "queue")) + "</dd><dt>Created</dt><dd>" + Esc(Str(x, "createdAt")) + "</dd><dt>Updated</dt><dd>" +
         Esc(Str(x, "updatedAt")) + "</dd>";
    if (x["parentId"].is_string()) {
      h += "<dt>Parent</dt><dd><a class=\"mono\" href=\"/workflows/" + Esc(Str(x, "parentId")) + "\">" +
           Esc(Str(x, "parentId")) + "</a></dd>";
    }
    h += "</dl><div class=\"io\"><section><h2>Input</h2>" + JsonBlock(x["input"]) +
         "</section><section><h2>Output</h2>" + JsonBlock(x["output"]) + "</section>";
    if (x["error"].is_string())
      h += "<section><h2>Error</h2><pre class=\"error\">" + Esc(Str(x, "error")) + "</pre></section>";
    h += "</div>";
    // Promises created and not yet settled can be resolved here.
    std::map<std::string, std::string> pending;
    for (const auto& e : (*events)["items"]) {
      std::string type = Str(e, "type");
      const json& p = e["payload"];
      if (!p.is_object()) continue;
      if (type == "PROMISE_CREATED") pending[Str(p, "promiseId")] = Str(p, "name");
      if (type == "PROMISE_RESOLVED" || type == "PROMISE_REJECTED" || type == "PROMISE_TIMED_OUT") {
        pending.erase(Str(p, "promiseId"));
      }
    }
    for (const auto& [pid, name] : pending) {
      if (pid.empty() || Terminal(status)) continue;
      h += "<section class=\"promise\"><h2>Waiting for promise “" + Esc(name) +
           "”</h2><form method=\"post\" action=\"/workflows/" + Esc(Str(x, "id")) + "/promises/" + Esc(pid) +
           "\" class=\"stack\">" + CsrfField(v.csrf) +
           "<label>Value (JSON) <textarea name=\"value\" rows=\"3\">null</textarea></label>"
           "<button type=\"submit\">Resolve</button></form></section>";
    }
    if (!Terminal(status)) {
      h += "<form method=\"post\" action=\"/workflows/" + Esc(Str(x, "id")) + "/cancel\" class=\"inline\">" +
           CsrfField(v.csrf) +
           "<button type=\"submit\" class=\"danger\" data-confirm=\"Cancel this workflow?\">Cancel "
           "workflow</button></form>";
    }
    h += "<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">";
    for (const auto& e : (*events)["items"]) {
      int64_t ms = e.contains("createdAtMs") && e["createdAtMs"].is_number() ? e["createdAtMs"].get<int64_t>() : 0;
      h += "<li><div class=\"ev-head\"><span class=\"seq\">#" + std::to_string(e.value("sequence", 0)) +
           "</span> <strong class=\"ev-type\">" + Esc(Str(e, "type")) + "</strong> <time>" + Esc(FormatMillis(ms)) +
           "</time></div>";
      if (!e["payload"].is_null() && !(e["payload"].is_object() && e["payload"].empty())) {
        h += "<details><summary>payload</summary>" + JsonBlock(e["payload"]) + "</details>";
      }
      h += "</li>";
    }
    h += "</ol>";
    return h;
  });
}

Response ConsoleModule::CancelWorkflow(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  json body = {{"reason", "cancelled from the console by " + v.session->user.email}};
  auto r = backend_->Call(*v.session, "POST", "/workflows/" + UrlEncode(id) + "/cancel", &body);
  if (!r.ok()) return WithBackend(v.Frame("Workflow", "workflows"), r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(id));
}

Response ConsoleModule::ResolvePromise(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  json value = json::parse(Field(v.form, "value").empty() ? "null" : Field(v.form, "value"), nullptr, false);
  auto fr = v.Frame("Workflow", "workflows");
  if (value.is_discarded()) {
    fr.error = "The value is not valid JSON.";
    return Html(400, Layout(fr, "<p><a href=\"/workflows/" + Esc(UrlEncode(id)) + "\">Back to the workflow</a></p>"));
  }
  json body = {{"value", value}};
  auto r =
      backend_->Call(*v.session, "POST", "/promises/" + UrlEncode(req.path_params.at("promise")) + "/resolve", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(id));
}

}  // namespace flovyn::app
