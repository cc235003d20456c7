// tenant, worker-token, retention, schedule and eventhook commands, and the local ones
// (profiles, completion).
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "cli.h"
#include "flovyn/http/message.h"
#include "output.h"
#include "profile.h"

namespace flovyn::cli {

using nlohmann::json;

namespace {

int Items(Context& ctx, const std::string& path, const Columns& columns) {
  auto r = ctx.Call("GET", path);
  return Show(ctx, r, [&] { PrintTable(*ctx.out, columns, r.body["items"]); });
}

void AddTenantCommands(std::vector<Command>& c) {
  Command create{"tenant create", "<slug>", 1, 1, "Create a tenant (a platform admin key)", {{"name", "display name"}},
                 [](Context& ctx, const Args& a) {
                   json body = {{"slug", a.positional[0]}, {"name", a.Get("name").value_or(a.positional[0])}};
                   auto r = ctx.Call("POST", "/api/tenants", body);
                   return Show(ctx, r, [&] { *ctx.out << r.body["id"].get<std::string>() << "\n"; });
                 }};
  create.needs_tenant = false;
  c.push_back(create);
  Command list{"tenant list", "", 0, 0, "The tenants the key may see", {}, [](Context& ctx, const Args&) {
                 return Items(ctx, "/api/tenants", {{"ID", "id"}, {"SLUG", "slug"}, {"NAME", "name"}});
               }};
  list.needs_tenant = false;
  c.push_back(list);
  c.push_back({"retention get", "", 0, 0, "How long the tenant keeps finished executions", {},
               [](Context& ctx, const Args&) {
                 auto r = ctx.Call("GET", ctx.TenantPath("/retention"));
                 return Show(ctx, r, [&] { *ctx.out << r.body["retentionDays"].get<int>() << " days\n"; });
               }});
  c.push_back({"retention set", "<days>", 1, 1, "Keep finished executions this many days (admin)", {},
               [](Context& ctx, const Args& a) {
                 json days = json::parse(a.positional[0], nullptr, false);
                 if (!days.is_number_integer()) {
                   *ctx.err << "error: days must be a whole number\n";
                   return static_cast<int>(kUsage);
                 }
                 auto r = ctx.Call("PUT", ctx.TenantPath("/retention"), {{"retentionDays", days}});
                 return Show(ctx, r, [&] { *ctx.out << r.body["retentionDays"].get<int>() << " days\n"; });
               }});
}

void AddWorkerTokenCommands(std::vector<Command>& c) {
  c.push_back({"worker-token create", "<name>", 1, 1, "Create a worker token; prints it (shown once)", {},
               [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("POST", ctx.TenantPath("/worker-tokens"), {{"name", a.positional[0]}});
                 return Show(ctx, r, [&] { *ctx.out << r.body["token"].get<std::string>() << "\n"; });
               }});
  c.push_back({"worker-token list", "", 0, 0, "Worker tokens (never the tokens themselves)", {},
               [](Context& ctx, const Args&) {
                 return Items(ctx, ctx.TenantPath("/worker-tokens"), {{"ID", "id"},
                                                                      {"NAME", "name"},
                                                                      {"PREFIX", "prefix"},
                                                                      {"CREATED", "createdAt"},
                                                                      {"LAST USED", "lastUsedAt"},
                                                                      {"REVOKED", "revokedAt"}});
               }});
  c.push_back({"worker-token revoke", "<id>", 1, 1, "Revoke a worker token", {}, [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("DELETE", ctx.TenantPath("/worker-tokens/" + PathArg(a)));
                 return Show(ctx, r, [&] { *ctx.out << "revoked\n"; });
               }});
}

// A JSON body from --file (a path, or - for standard input).
std::optional<json> BodyFromFile(Context& ctx, const Args& a) {
  auto file = a.Get("file");
  if (!file) {
    *ctx.err << "error: --file is required (a JSON document, or - for standard input)\n";
    return std::nullopt;
  }
  std::stringstream text;
  if (*file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream f(*file);
    if (!f) {
      *ctx.err << "error: cannot read " << *file << "\n";
      return std::nullopt;
    }
    text << f.rdbuf();
  }
  json body = json::parse(text.str(), nullptr, false);
  if (!body.is_object()) {
    *ctx.err << "error: " << *file << " is not a JSON object\n";
    return std::nullopt;
  }
  return body;
}

void AddScheduleCommands(std::vector<Command>& c) {
  c.push_back({"schedule list", "", 0, 0, "Schedules with their next fire time", {}, [](Context& ctx, const Args&) {
                 return Items(ctx, ctx.TenantPath("/schedules"), {{"ID", "id"},
                                                                  {"NAME", "name"},
                                                                  {"CRON", "cron"},
                                                                  {"EVERY (S)", "intervalSeconds"},
                                                                  {"PAUSED", "paused"},
                                                                  {"NEXT", "nextFireAt"}});
               }});
  c.push_back({"schedule show", "<id>", 1, 1, "A schedule and its next fire times", {},
               [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("GET", ctx.TenantPath("/schedules/" + PathArg(a)));
                 return Show(ctx, r, [&] { *ctx.out << r.body.dump(2) << "\n"; });
               }});
  c.push_back({"schedule create", "", 0, 0, "Create a schedule from a JSON document (docs/triggers.md)",
               {{"file", "the schedule as JSON (- for standard input)"}}, [](Context& ctx, const Args& a) {
                 auto body = BodyFromFile(ctx, a);
                 if (!body) return static_cast<int>(kUsage);
                 auto r = ctx.Call("POST", ctx.TenantPath("/schedules"), *body);
                 return Show(ctx, r, [&] { *ctx.out << r.body["id"].get<std::string>() << "\n"; });
               }});
  for (const char* action : {"pause", "resume", "trigger"}) {
    c.push_back({std::string("schedule ") + action, "<id>", 1, 1,
                 std::string(action) == "trigger" ? "Start the schedule's workflow now"
                 : std::string(action) == "pause" ? "Pause a schedule (no fires until resumed)"
                                                  : "Resume a paused schedule",
                 {}, [action = std::string(action)](Context& ctx, const Args& a) {
                   auto r = ctx.Call("POST", ctx.TenantPath("/schedules/" + PathArg(a) + "/" + action), json::object());
                   return Show(ctx, r, [&] { *ctx.out << r.body.dump() << "\n"; });
                 }});
  }
  c.push_back({"schedule delete", "<id>", 1, 1, "Delete a schedule", {}, [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("DELETE", ctx.TenantPath("/schedules/" + PathArg(a)));
                 return Show(ctx, r, [&] { *ctx.out << "deleted\n"; });
               }});
}

void AddEventhookCommands(std::vector<Command>& c) {
  c.push_back({"eventhook sources", "", 0, 0, "Event sources", {}, [](Context& ctx, const Args&) {
                 return Items(ctx, ctx.TenantPath("/eventhook/sources"),
                              {{"ID", "id"}, {"SLUG", "slug"}, {"VERIFIER", "verifier"}, {"ENABLED", "enabled"}});
               }});
  c.push_back({"eventhook events", "", 0, 0, "Received events, newest first", {}, [](Context& ctx, const Args&) {
                 return Items(ctx, ctx.TenantPath("/eventhook/events"), {{"ID", "id"},
                                                                         {"SOURCE", "sourceId"},
                                                                         {"TYPE", "eventType"},
                                                                         {"STATUS", "status"},
                                                                         {"RECEIVED", "receivedAt"}});
               }});
  c.push_back({"eventhook reprocess", "<id>", 1, 1, "Route a received event again", {},
               [](Context& ctx, const Args& a) {
                 auto r = ctx.Call("POST", ctx.TenantPath("/eventhook/events/" + PathArg(a) + "/reprocess"), json::object());
                 return Show(ctx, r, [&] { *ctx.out << r.body.dump() << "\n"; });
               }});
}

void AddLocalCommands(std::vector<Command>& c) {
  Command set{"profile set", "<name>", 1, 1, "Save --server, --api-key and --tenant as a profile", {},
              [](Context& ctx, const Args& a) {
                std::string path = ConfigPath(a.Get("config"));
                std::map<std::string, Profile> all;
                if (auto e = LoadProfiles(path, all)) {
                  *ctx.err << "error: " << *e << "\n";
                  return static_cast<int>(kUsage);
                }
                Profile& p = all[a.positional[0]];
                if (auto v = a.Get("server")) p.server = *v;
                if (auto v = a.Get("api-key")) p.api_key = *v;
                if (auto v = a.Get("tenant")) p.tenant = *v;
                if (auto e = SaveProfiles(path, all)) {
                  *ctx.err << "error: " << *e << "\n";
                  return static_cast<int>(kUsage);
                }
                *ctx.out << "profile " << a.positional[0] << " saved in " << path << "\n";
                return static_cast<int>(kOk);
              }};
  set.needs_tenant = false;
  c.push_back(set);
  Command list{"profile list", "", 0, 0, "The profiles in the config file (keys hidden)", {},
               [](Context& ctx, const Args& a) {
                 std::map<std::string, Profile> all;
                 if (auto e = LoadProfiles(ConfigPath(a.Get("config")), all)) {
                   *ctx.err << "error: " << *e << "\n";
                   return static_cast<int>(kUsage);
                 }
                 json items = json::array();
                 for (const auto& [name, p] : all) {
                   items.push_back({{"name", name},
                                    {"server", p.server},
                                    {"tenant", p.tenant},
                                    {"apiKey", p.api_key.empty() ? "" : "(set)"}});
                 }
                 if (ctx.json_output) {
                   *ctx.out << json({{"items", items}}).dump(2) << "\n";
                 } else {
                   PrintTable(*ctx.out, {{"NAME", "name"}, {"SERVER", "server"}, {"TENANT", "tenant"}, {"API KEY", "apiKey"}},
                              items);
                 }
                 return static_cast<int>(kOk);
               }};
  list.needs_tenant = false;
  c.push_back(list);
  Command completion{"completion", "bash", 1, 1, "Print the bash completion script (source <(flovyn completion bash))",
                     {}, [](Context& ctx, const Args& a) {
                       if (a.positional[0] != "bash") {
                         *ctx.err << "error: only bash completion is available\n";
                         return static_cast<int>(kUsage);
                       }
                       *ctx.out << BashCompletion();
                       return static_cast<int>(kOk);
                     }};
  completion.needs_tenant = false;
  c.push_back(completion);
}

}  // namespace

void AddAdminCommands(std::vector<Command>& all) {
  AddTenantCommands(all);
  AddWorkerTokenCommands(all);
  AddScheduleCommands(all);
  AddEventhookCommands(all);
  AddLocalCommands(all);
}

}  // namespace flovyn::cli
