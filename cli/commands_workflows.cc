// workflow, task and promise commands.
#include <chrono>
#include <ostream>
#include <thread>

#include "cli.h"
#include "flovyn/http/message.h"
#include "output.h"

namespace flovyn::cli {

using nlohmann::json;

namespace {

const Columns kWorkflowColumns = {{"ID", "id"},          {"KIND", "kind"},           {"STATUS", "status"},
                                  {"QUEUE", "queue"},    {"CREATED", "createdAt"}, {"COMPLETED", "completedAt"}};
const Columns kWorkflowFields = {{"id", "id"},
                                 {"kind", "kind"},
                                 {"queue", "queue"},
                                 {"status", "status"},
                                 {"input", "input"},
                                 {"output", "output"},
                                 {"error", "error"},
                                 {"parent", "parentId"},
                                 {"idempotency key", "idempotencyKey"},
                                 {"last sequence", "lastSequence"},
                                 {"created", "createdAt"},
                                 {"updated", "updatedAt"},
                                 {"completed", "completedAt"},
                                 {"search attributes", "searchAttributes"}};
const Columns kTaskColumns = {{"ID", "id"},         {"KIND", "kind"},       {"STATUS", "status"},
                              {"ATTEMPT", "attempt"}, {"QUEUE", "queue"}, {"CREATED", "createdAt"}};
const Columns kTaskFields = {{"id", "id"},         {"kind", "kind"},         {"queue", "queue"},
                             {"status", "status"}, {"attempt", "attempt"},   {"max attempts", "maxAttempts"},
                             {"input", "input"},   {"output", "output"},     {"error", "error"},
                             {"progress", "progress"}, {"workflow", "workflowId"}, {"created", "createdAt"},
                             {"completed", "completedAt"}};

std::string Query(const Args& a, const std::vector<std::pair<std::string, std::string>>& names) {
  std::string q;
  for (const auto& [option, param] : names) {
    if (auto v = a.Get(option)) q += (q.empty() ? "?" : "&") + param + "=" + http::UrlEncode(*v);
  }
  return q;
}

// A listing: one page, or with --all every page (cursor after cursor).
int List(Context& ctx, const Args& a, const std::string& path, const Columns& columns) {
  json all = json::array();
  std::string cursor = a.Get("cursor").value_or("");
  json last;
  do {
    std::string target = path;
    if (!cursor.empty()) target += (target.find('?') == std::string::npos ? "?" : "&") + ("cursor=" + cursor);
    auto r = ctx.Call("GET", target);
    if (r.exit != kOk) return r.exit;
    for (const auto& i : r.body["items"]) all.push_back(i);
    last = r.body;
    cursor = a.Has("all") && r.body["nextCursor"].is_string() ? r.body["nextCursor"].get<std::string>() : "";
  } while (!cursor.empty());
  if (ctx.json_output) {
    *ctx.out << json({{"items", all}, {"nextCursor", a.Has("all") ? json(nullptr) : last["nextCursor"]}}).dump(2)
             << "\n";
    return kOk;
  }
  PrintTable(*ctx.out, columns, all);
  if (!a.Has("all") && last["nextCursor"].is_string()) {
    *ctx.out << "(more: --cursor " << last["nextCursor"].get<std::string>() << ", or --all)\n";
  }
  return kOk;
}

int PrintEvents(Context& ctx, const json& items) {
  for (const auto& e : items) {
    if (ctx.json_output) {
      *ctx.out << e.dump() << "\n";
    } else {
      *ctx.out << e["sequence"].get<int64_t>() << "  " << e["type"].get<std::string>() << "  "
               << Cell(e["payload"], 200) << "\n";
    }
  }
  ctx.out->flush();
  return kOk;
}

bool Terminal(const std::string& status) { return status == "COMPLETED" || status == "FAILED" || status == "CANCELLED"; }

// Prints the history; with --follow keeps printing new events until the workflow ends.
int Events(Context& ctx, const Args& a) {
  std::string base = ctx.TenantPath("/workflows/" + http::UrlEncode(a.positional[0]) + "/events");
  int64_t after = 0;
  while (true) {
    auto r = ctx.Call("GET", base + "?after=" + std::to_string(after));
    if (r.exit != kOk) return r.exit;
    const json& items = r.body["items"];
    if (!a.Has("follow") && ctx.json_output) {
      *ctx.out << r.body.dump(2) << "\n";
      return kOk;
    }
    PrintEvents(ctx, items);
    bool ended = false;
    for (const auto& e : items) {
      after = e["sequence"].get<int64_t>();
      std::string type = e["type"];
      ended = ended || type == "WORKFLOW_COMPLETED" || type == "WORKFLOW_FAILED" || type == "WORKFLOW_CANCELLED";
    }
    if (!a.Has("follow") || ended) return kOk;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// The output of a finished workflow; with --wait, waits for it to finish first.
int Result(Context& ctx, const Args& a) {
  std::string path = ctx.TenantPath("/workflows/" + http::UrlEncode(a.positional[0]));
  while (true) {
    auto r = ctx.Call("GET", path);
    if (r.exit != kOk) return r.exit;
    std::string status = r.body["status"];
    if (Terminal(status) || !a.Has("wait")) {
      if (ctx.json_output) {
        *ctx.out << json({{"status", status}, {"output", r.body["output"]}, {"error", r.body["error"]}}).dump(2)
                 << "\n";
      } else if (status == "COMPLETED") {
        *ctx.out << r.body["output"].dump() << "\n";
      } else {
        *ctx.err << "workflow is " << status
                 << (r.body["error"].is_string() ? ": " + r.body["error"].get<std::string>() : std::string()) << "\n";
      }
      return status == "COMPLETED" ? kOk : kNotCompleted;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

int Start(Context& ctx, const Args& a) {
  json body = {{"kind", a.positional[0]}, {"input", JsonOption(a, "input").value_or(json(nullptr))}};
  if (auto q = a.Get("queue")) body["queue"] = *q;
  if (auto k = a.Get("idempotency-key")) body["idempotencyKey"] = *k;
  auto r = ctx.Call("POST", ctx.TenantPath("/workflows"), body);
  return Show(ctx, r, [&] { *ctx.out << r.body["id"].get<std::string>() << "\n"; });
}

void AddWorkflowReads(std::vector<Command>& c) {
  c.push_back({"workflow list", "", 0, 0, "List workflows, newest first (--query: docs/search.md)",
               {{"status", "only this status"},
                {"kind", "only this kind"},
                {"queue", "only this queue"},
                {"parent", "only children of this execution"},
                {"query", "search, e.g. 'kind = \"order\" AND customer = \"c-42\"'"},
                {"limit", "items per page (1 to 500)"},
                {"cursor", "continue after a previous page"},
                {"all", "every page", true}},
               [](Context& ctx, const Args& a) {
                 std::string q = Query(a, {{"status", "status"},
                                           {"kind", "kind"},
                                           {"queue", "queue"},
                                           {"parent", "parent"},
                                           {"query", "q"},
                                           {"limit", "limit"}});
                 return List(ctx, a, ctx.TenantPath("/workflows") + q, kWorkflowColumns);
               }});
  c.push_back({"workflow show", "<id>", 1, 1, "A workflow execution", {}, [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("GET", ctx.TenantPath("/workflows/" + PathArg(a)));
                 return Show(ctx, r, [&] { PrintFields(*ctx.out, r.body, kWorkflowFields); });
               }});
  c.push_back({"workflow events", "<id>", 1, 1, "A workflow's history; --follow prints new events until it ends",
               {{"follow", "keep printing new events until the workflow ends", true}}, Events});
  c.push_back({"workflow result", "<id>", 1, 1,
               "The output of a completed workflow (exit 5 when it failed or was cancelled)",
               {{"wait", "wait until the workflow finishes", true}}, Result});
}

void AddWorkflowWrites(std::vector<Command>& c) {
  c.push_back({"workflow start", "<kind>", 1, 1, "Start a workflow; prints its id",
               {{"input", "input as JSON"}, {"queue", "queue (default \"default\")"},
                {"idempotency-key", "a repeated start with this key returns the first execution"}},
               Start});
  c.push_back({"workflow signal", "<id> <name>", 2, 2, "Send a signal to a workflow",
               {{"payload", "payload as JSON"}}, [](Context& ctx, const Args& a) {
                 json body = {{"name", a.positional[1]}, {"payload", JsonOption(a, "payload").value_or(nullptr)}};
                 auto r = ctx.Call("POST", ctx.TenantPath("/workflows/" + PathArg(a) + "/signals"), body);
                 return Show(ctx, r, [&] { *ctx.out << "signal delivered\n"; });
               }});
  c.push_back({"workflow cancel", "<id>", 1, 1, "Cancel a workflow",
               {{"reason", "why"}, {"grace-ms", "let the code compensate first; cancelled outright after this"}},
               [](Context& ctx, const Args& a) {
                 json body = json::object();
                 if (auto why = a.Get("reason")) body["reason"] = *why;
                 if (auto grace = JsonOption(a, "grace-ms")) body["graceMs"] = *grace;
                 auto r = ctx.Call("POST", ctx.TenantPath("/workflows/" + PathArg(a) + "/cancel"), body);
                 return Show(ctx, r, [&] { *ctx.out << "cancellation requested\n"; });
               }});
  c.push_back({"workflow set-attributes", "<id> <json>", 2, 2,
               "Set search attributes ('{\"customer\":\"c-42\"}'; null removes one)", {},
               [](Context& ctx, const Args& a) {
                 json attributes = json::parse(a.positional[1], nullptr, false);
                 if (!attributes.is_object()) {
                   *ctx.err << "error: the attributes must be a JSON object\n";
                   return static_cast<int>(kUsage);
                 }
                 auto r = ctx.Call("POST", ctx.TenantPath("/workflows/" + PathArg(a) + "/search-attributes"),
                                   {{"attributes", attributes}});
                 return Show(ctx, r, [&] { *ctx.out << r.body["searchAttributes"].dump() << "\n"; });
               }});
}

void AddTaskAndPromiseCommands(std::vector<Command>& c) {
  c.push_back({"task list", "", 0, 0, "List tasks, newest first",
               {{"status", "only this status"}, {"kind", "only this kind"}, {"limit", "items per page (1 to 500)"},
                {"cursor", "continue after a previous page"}, {"all", "every page", true}},
               [](Context& ctx, const Args& a) {
                 std::string q = Query(a, {{"status", "status"}, {"kind", "kind"}, {"limit", "limit"}});
                 return List(ctx, a, ctx.TenantPath("/tasks") + q, kTaskColumns);
               }});
  c.push_back({"task show", "<id>", 1, 1, "A task", {}, [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("GET", ctx.TenantPath("/tasks/" + PathArg(a)));
                 return Show(ctx, r, [&] { PrintFields(*ctx.out, r.body, kTaskFields); });
               }});
  c.push_back({"task cancel", "<id>", 1, 1, "Cancel a task", {{"reason", "why"}}, [](Context& ctx, const Args& a) {
                 json body = json::object();
                 if (auto why = a.Get("reason")) body["reason"] = *why;
                 auto r = ctx.Call("POST", ctx.TenantPath("/tasks/" + PathArg(a) + "/cancel"), body);
                 return Show(ctx, r, [&] { *ctx.out << "cancellation requested\n"; });
               }});
  c.push_back({"promise resolve", "<id>", 1, 1, "Resolve a waiting promise", {{"value", "value as JSON"}},
               [](Context& ctx, const Args& a) {
                 json body = {{"value", JsonOption(a, "value").value_or(nullptr)}};
                 auto r = ctx.Call("POST", ctx.TenantPath("/promises/" + PathArg(a) + "/resolve"), body);
                 return Show(ctx, r, [&] { *ctx.out << "resolved\n"; });
               }});
  c.push_back({"promise reject", "<id>", 1, 1, "Reject a waiting promise", {{"error", "the error message"}},
               [](Context& ctx, const Args& a) {
                 json body = {{"error", a.Get("error").value_or("rejected")}};
                 auto r = ctx.Call("POST", ctx.TenantPath("/promises/" + PathArg(a) + "/reject"), body);
                 return Show(ctx, r, [&] { *ctx.out << "rejected\n"; });
               }});
}

}  // namespace

void AddWorkflowCommands(std::vector<Command>& all) {
  AddWorkflowWrites(all);
  AddWorkflowReads(all);
  AddTaskAndPromiseCommands(all);
}

}  // namespace flovyn::cli
