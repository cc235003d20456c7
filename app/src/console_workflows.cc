// The console's workflow pages: the overview, the list with its filters, starting one, one
// execution with its history, cancelling it and settling its promises.
#include <algorithm>

#include "console_common.h"

namespace flovyn::app {

namespace {
// The workflow_rows partial's list.
json WorkflowRows(const json& items) {
  json rows = json::array();
  for (const auto& w : items) {
    json row = Badge(Str(w, "status"));
    std::string id = Str(w, "id");
    row.update({{"id", id},
                {"shortId", id.substr(0, 8)},
                {"kind", Str(w, "kind")},
                {"queue", Str(w, "queue")},
                {"createdAt", Str(w, "createdAt")}});
    rows.push_back(std::move(row));
  }
  return rows;
}
}  // namespace

Response ConsoleModule::Overview(const Request&, Visit& v) {
  auto counts = backend_->Call(*v.session, "GET", "/workflow-counts");
  StatusOr<json> recent = counts.ok() ? backend_->Call(*v.session, "GET", "/workflows?limit=10") : counts.status();
  return WithBackend(v.Frame("Overview", "overview"), recent.status(), [&] {
    json cards = json::array();
    for (const auto& s : kWorkflowStatuses) {
      json card = Badge(s);
      card["count"] = (*counts)["counts"].value(s, 0);
      cards.push_back(std::move(card));
    }
    return Render("overview", {{"cards", cards}, {"workflows", WorkflowRows((*recent)["items"])}});
  });
}

Response ConsoleModule::Workflows(const Request& req, Visit& v) {
  std::string status = Query(req, "status"), kind = Query(req, "kind"), cursor = Query(req, "cursor"),
              search = Query(req, "q");
  if (!status.empty() &&
      std::find(kWorkflowStatuses.begin(), kWorkflowStatuses.end(), status) == kWorkflowStatuses.end()) {
    return Refusal(400, "Bad filter", "Unknown workflow status.");
  }
  std::string q = "/workflows?limit=25";
  if (!status.empty()) q += "&status=" + UrlEncode(status);
  if (!kind.empty()) q += "&kind=" + UrlEncode(kind);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  if (!search.empty()) q += "&q=" + UrlEncode(search);
  auto list = backend_->Call(*v.session, "GET", q);
  // A search the server refuses is shown beside the form, which keeps what was typed.
  std::string search_error;
  if (!list.ok() && list.status().code() == StatusCode::kInvalidArgument && !search.empty()) {
    search_error = list.status().message();
    list = json{{"items", json::array()}, {"nextCursor", nullptr}};
  }
  return WithBackend(v.Frame("Workflows", "workflows"), list.status(), [&] {
    return Render("workflows",
                  {{"statuses", StatusOptions(kWorkflowStatuses, status)},
                   {"kind", kind},
                   {"q", search},
                   {"searchError", search_error.empty() ? json(false) : json(search_error)},
                   {"workflows", WorkflowRows((*list)["items"])},
                   {"next", NextPage(*list, "/workflows", {{"status", status}, {"kind", kind}, {"q", search}})},
                   {"csrf", v.csrf}});
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
  if (!fr.error.empty()) return Html(400, Layout(fr, Render("message", Message("Workflows", "", "/workflows"))));
  json body = {{"kind", kind}, {"queue", queue.empty() ? "default" : queue}, {"input", in}};
  auto r = backend_->Call(*v.session, "POST", "/workflows", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(Str(*r, "id")));
}

namespace {
// Promises created and not yet settled, which the page offers to resolve.
json PendingPromises(const json& events) {
  std::map<std::string, std::string> pending;
  for (const auto& e : events) {
    std::string type = Str(e, "type");
    const json& p = e["payload"];
    if (!p.is_object()) continue;
    if (type == "PROMISE_CREATED") pending[Str(p, "promiseId")] = Str(p, "name");
    if (type == "PROMISE_RESOLVED" || type == "PROMISE_REJECTED" || type == "PROMISE_TIMED_OUT") {
      pending.erase(Str(p, "promiseId"));
    }
  }
  json out = json::array();
  for (const auto& [pid, name] : pending) {
    if (!pid.empty()) out.push_back({{"promiseId", pid}, {"name", name}});
  }
  return out;
}

json WorkflowView(const json& x, const json& events) {
  std::string status = Str(x, "status");
  bool open = !Terminal(status);
  json view = Badge(status);
  view.update({{"id", Str(x, "id")},
               {"kind", Str(x, "kind")},
               {"queue", Str(x, "queue")},
               {"createdAt", Str(x, "createdAt")},
               {"updatedAt", Str(x, "updatedAt")},
               {"parentId", Str(x, "parentId")},
               {"input", JsonView(x["input"])},
               {"output", JsonView(x["output"])},
               {"error", Str(x, "error")},
               {"problem", x.contains("problem") && x["problem"].is_object()
                               ? json{{"message", Str(x["problem"], "message")}, {"at", Str(x["problem"], "at")}}
                               : json(false)},
               {"open", open},
               {"pendingPromises", open ? PendingPromises(events) : json::array()}});
  return view;
}

json EventsView(const json& events) {
  json out = json::array();
  for (const auto& e : events) {
    int64_t ms = e.contains("createdAtMs") && e["createdAtMs"].is_number() ? e["createdAtMs"].get<int64_t>() : 0;
    const json& p = e["payload"];
    bool shown = !p.is_null() && !(p.is_object() && p.empty());
    out.push_back({{"sequence", e.value("sequence", 0)},
                   {"type", Str(e, "type")},
                   {"time", FormatMillis(ms)},
                   {"payload", shown ? JsonView(p) : json(false)}});
  }
  return out;
}
}  // namespace

Response ConsoleModule::WorkflowDetail(const Request& req, Visit& v) {
  const std::string& id = req.path_params.at("id");
  auto w = backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id));
  StatusOr<json> events =
      w.ok() ? backend_->Call(*v.session, "GET", "/workflows/" + UrlEncode(id) + "/events") : w.status();
  auto fr = v.Frame("Workflow", "workflows");
  if (w.ok() && !Terminal(Str(*w, "status"))) fr.refresh_secs = 3;
  return WithBackend(fr, events.status(), [&] {
    const json& items = (*events)["items"];
    int64_t last = items.empty() ? 0 : items.back().value("sequence", int64_t{0});
    bool open = !Terminal(Str(*w, "status"));
    return Render(
        "workflow",
        {{"workflow", WorkflowView(*w, items)},
         {"events", EventsView(items)},
         {"follow", open ? json("/workflows/" + UrlEncode(id) + "/live?after=" + std::to_string(last)) : json(false)},
         {"csrf", v.csrf}});
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
    return Html(
        400,
        Layout(fr, Render("message", Message("Workflow", "", "/workflows/" + UrlEncode(id), "Back to the workflow"))));
  }
  json body = {{"value", value}};
  auto r =
      backend_->Call(*v.session, "POST", "/promises/" + UrlEncode(req.path_params.at("promise")) + "/resolve", &body);
  if (!r.ok()) return WithBackend(fr, r.status(), [] { return std::string(); });
  return Redirect("/workflows/" + UrlEncode(id));
}

namespace {

// Relays a workflow's new events from the server as Server-Sent Events, each the JSON the page's
// script turns into a timeline entry; holds one of the console's live-page slots until it ends.
class LiveTimeline final : public http::BodyStream {
 public:
  LiveTimeline(const Backend& backend, Session session, std::string id, int64_t after,
               std::shared_ptr<std::atomic<int>> slots)
      : http::BodyStream(std::chrono::seconds(1)),
        backend_(backend),
        session_(std::move(session)),
        id_(std::move(id)),
        after_(after),
        slots_(std::move(slots)),
        last_sent_(std::chrono::steady_clock::now()) {}
  ~LiveTimeline() override { slots_->fetch_sub(1); }

  std::string Next(bool& end) override {
    auto r = backend_.Call(session_, "GET", "/workflows/" + UrlEncode(id_) + "/events?after=" + std::to_string(after_));
    if (!r.ok()) {
      end = true;  // the page reloads and shows what is wrong
      return "event: end\ndata: {}\n\n";
    }
    std::string out;
    for (const auto& e : EventsView((*r)["items"])) {
      after_ = e["sequence"].get<int64_t>();
      json entry = {{"sequence", after_},
                    {"type", e["type"]},
                    {"time", e["time"]},
                    {"payload", e["payload"].is_object() ? e["payload"]["text"] : json("")}};
      out += "id: " + std::to_string(after_) + "\nevent: append\ndata: " + entry.dump() + "\n\n";
      std::string type = e["type"];
      if (type == "WORKFLOW_COMPLETED" || type == "WORKFLOW_FAILED" || type == "WORKFLOW_CANCELLED") end = true;
    }
    if (end) out += "event: end\ndata: {}\n\n";
    auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - last_sent_ > std::chrono::seconds(15)) out = ": keep-alive\n\n";
    if (!out.empty()) last_sent_ = now;
    return out;
  }

 private:
  const Backend& backend_;
  Session session_;
  std::string id_;
  int64_t after_;
  std::shared_ptr<std::atomic<int>> slots_;
  std::chrono::steady_clock::time_point last_sent_;
};

int64_t AfterOf(const Request& req) {
  std::string text(req.Header("last-event-id"));
  if (text.empty()) text = Query(req, "after");
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(text);
}

}  // namespace

Response ConsoleModule::WorkflowLive(const Request& req, Visit& v) {
  int64_t after = AfterOf(req);
  if (after < 0) return Refusal(400, "Bad request", "after must be a sequence number.");
  if (live_pages_->fetch_add(1) >= settings_.max_live_pages) {
    live_pages_->fetch_sub(1);
    Response busy = Refusal(503, "Busy", "Too many pages follow workflows live (console.max_live_pages).");
    busy.With("Retry-After", "5");
    return busy;
  }
  Response r;
  r.content_type = "text/event-stream";
  r.stream = std::make_shared<LiveTimeline>(*backend_, *v.session, req.path_params.at("id"), after, live_pages_);
  return r;
}

}  // namespace flovyn::app
