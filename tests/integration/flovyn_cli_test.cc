// The `flovyn` command line against a real flovyn-server: every command, both output forms,
// profiles and the environment, exit codes, --help on every command and the bash completion.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct CliRun {
  int code = -1;
  std::string out, err;
  json Json() const { return json::parse(out); }
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs flovyn with `args` and `env` (NAME=value words put before it).
CliRun Flovyn(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
              const std::string& stdin_text = "") {
  static int n = 0;
  std::string err_file = std::filesystem::temp_directory_path() /
                         ("flovyn-cli-err-" + std::to_string(getpid()) + "-" + std::to_string(n++));
  std::string cmd = "env -u FLOVYN_SERVER -u FLOVYN_API_KEY -u FLOVYN_TENANT -u FLOVYN_PROFILE HOME=/nonexistent";
  for (const auto& e : env) cmd += " " + Quote(e);
  cmd += " " + Quote(FLOVYN_CLI_BINARY);
  for (const auto& a : args) cmd += " " + Quote(a);
  if (!stdin_text.empty()) cmd = "printf %s " + Quote(stdin_text) + " | " + cmd;
  cmd += " 2>" + err_file;
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, got);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  std::filesystem::remove(err_file);
  return r;
}

class FlovynCliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Env(const std::string& key = TenantKey("acme")) {
    return {"FLOVYN_SERVER=http://127.0.0.1:" + std::to_string(s_.http_port()), "FLOVYN_API_KEY=" + key,
            "FLOVYN_TENANT=acme"};
  }
  CliRun Cli(const std::vector<std::string>& args, const std::string& key = TenantKey("acme")) {
    return Flovyn(args, Env(key));
  }
  EngineServer s_;
};

TEST_F(FlovynCliTest, WorkflowCommandsStartListShowSignalCancelAndReadResults) {
  CliRun started = Cli({"workflow", "start", "order", "--input", R"({"n":1})", "--queue", "cliq"});
  ASSERT_EQ(started.code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  EXPECT_EQ(s_.RestJson("GET", "/api/tenants/acme/workflows/" + id)["input"], json({{"n", 1}}));
  // Idempotency: the same key gives the first execution.
  CliRun again1 = Cli({"workflow", "start", "order", "--idempotency-key", "k1", "--output", "json"});
  CliRun again2 = Cli({"workflow", "start", "order", "--idempotency-key", "k1", "--output", "json"});
  EXPECT_EQ(again1.Json()["id"], again2.Json()["id"]);
  EXPECT_EQ(again2.Json()["created"], false);

  CliRun table = Cli({"workflow", "list", "--queue", "cliq"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
  EXPECT_NE(table.out.find(id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("PENDING"), std::string::npos) << table.out;
  CliRun js = Cli({"workflow", "list", "--output", "json", "--kind", "order"});
  EXPECT_EQ(js.Json()["items"].size(), 2u) << js.out;
  ASSERT_EQ(Cli({"workflow", "set-attributes", id, R"({"customer":"c-42"})"}).code, 0);
  CliRun found = Cli({"workflow", "list", "--query", R"(customer = "c-42")", "--output", "json"});
  ASSERT_EQ(found.Json()["items"].size(), 1u);
  EXPECT_EQ(found.Json()["items"][0]["id"], id);
  CliRun bad = Cli({"workflow", "list", "--query", "customer ="});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("expected a value after '='"), std::string::npos) << bad.err;

  CliRun show = Cli({"workflow", "show", id});
  EXPECT_NE(show.out.find("kind:"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("c-42"), std::string::npos) << show.out;
  ASSERT_EQ(Cli({"workflow", "signal", id, "go", "--payload", "7"}).code, 0);
  CliRun events = Cli({"workflow", "events", id});
  EXPECT_NE(events.out.find("1  WORKFLOW_STARTED"), std::string::npos) << events.out;
  EXPECT_NE(events.out.find("SIGNAL_RECEIVED"), std::string::npos) << events.out;
  EXPECT_EQ(Cli({"workflow", "events", id, "--output", "json"}).Json()["items"].size(), 2u);
  // Not finished: result says so with exit 5.
  EXPECT_EQ(Cli({"workflow", "result", id}).code, 5);
  // A graceful cancel: the request reaches the workflow (nobody runs it here), then an outright one.
  ASSERT_EQ(Cli({"workflow", "cancel", id, "--grace-ms", "60000"}).code, 0);
  CliRun requested = Cli({"workflow", "events", id, "--output", "json"});
  EXPECT_EQ(requested.Json()["items"].back()["type"], "CANCELLATION_REQUESTED") << requested.out;
  EXPECT_EQ(requested.Json()["items"].back()["payload"]["graceMs"], 60000) << requested.out;
  ASSERT_EQ(Cli({"workflow", "cancel", id, "--reason", "done testing"}).code, 0);
  CliRun result = Cli({"workflow", "result", id, "--wait"});
  EXPECT_EQ(result.code, 5);
  EXPECT_NE(result.err.find("CANCELLED"), std::string::npos) << result.err;
  CliRun missing = Cli({"workflow", "show", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(missing.code, 4);
  EXPECT_NE(missing.err.find("(HTTP 404)"), std::string::npos) << missing.err;
}

TEST_F(FlovynCliTest, EventsFollowPrintsNewEventsUntilTheWorkflowEnds) {
  std::string id = s_.RestJson("POST", "/api/tenants/acme/workflows", R"({"kind":"k"})")["id"];
  std::thread later([&] {
    std::this_thread::sleep_for(700ms);
    s_.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"late"})");
    std::this_thread::sleep_for(700ms);
    s_.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel");
  });
  auto t0 = std::chrono::steady_clock::now();
  CliRun follow = Cli({"workflow", "events", id, "--follow"});
  later.join();
  EXPECT_EQ(follow.code, 0) << follow.err;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1s) << "it waited for the events";
  auto started = follow.out.find("WORKFLOW_STARTED"), signal = follow.out.find("SIGNAL_RECEIVED"),
       cancelled = follow.out.find("WORKFLOW_CANCELLED");
  ASSERT_NE(cancelled, std::string::npos) << follow.out;
  EXPECT_LT(started, signal);
  EXPECT_LT(signal, cancelled);
}

TEST_F(FlovynCliTest, TasksPromisesTokensTenantsRetentionAndSchedules) {
  CliRun task = Cli({"task", "list", "--output", "json"});
  EXPECT_EQ(task.Json()["items"].size(), 0u);
  std::string task_id = s_.RestJson("POST", "/api/tenants/acme/tasks", R"({"kind":"email","input":{}})")["id"];
  CliRun tasks = Cli({"task", "list"});
  EXPECT_NE(tasks.out.find(task_id), std::string::npos) << tasks.out;
  EXPECT_NE(Cli({"task", "show", task_id}).out.find("email"), std::string::npos);
  ASSERT_EQ(Cli({"task", "cancel", task_id}).code, 0);
  EXPECT_EQ(s_.RestJson("GET", "/api/tenants/acme/tasks/" + task_id)["status"], "CANCELLED");
  EXPECT_EQ(Cli({"task", "cancel", task_id}).code, 1) << "already cancelled: refused";

  // A promise a workflow created, resolved from the command line.
  sdk::Client client(s_.ClientFor("acme"));
  std::string wf = s_.RestJson("POST", "/api/tenants/acme/workflows", R"({"kind":"p","queue":"pq"})")["id"];
  auto [worker, claim] = ClaimNextWorkflow(client, "pq");
  v1::SubmitWorkflowCommandsRequest sub;
  sub.set_worker_id(worker);
  sub.set_execution_id(wf);
  sub.set_expected_sequence(1);
  v1::WorkflowCommand promise;
  promise.mutable_create_promise()->set_name("approval");
  *sub.add_commands() = promise;
  *sub.add_commands() = sdk::Suspend();
  v1::SubmitWorkflowCommandsResponse res;
  ASSERT_TRUE(client.SubmitCommands(sub, &res).ok());
  std::string promise_id = json::parse(res.events(0).payload_json())["promiseId"];
  ASSERT_EQ(Cli({"promise", "resolve", promise_id, "--value", R"({"ok":true})"}).code, 0);
  EXPECT_EQ(s_.Events("acme", wf).back()["type"], "PROMISE_RESOLVED");
  EXPECT_EQ(Cli({"promise", "reject", promise_id}).code, 1) << "settled already";

  CliRun token = Cli({"worker-token", "create", "ci"});
  ASSERT_EQ(token.code, 0) << token.err;
  EXPECT_EQ(token.out.rfind("fwt_", 0), 0u) << token.out;
  CliRun tokens = Cli({"worker-token", "list", "--output", "json"});
  std::string token_id;
  json token_list = tokens.Json();
  for (const auto& t : token_list["items"]) {
    if (t["name"] == "ci") token_id = t["id"].get<std::string>();
  }
  ASSERT_FALSE(token_id.empty()) << tokens.out << tokens.err;
  ASSERT_EQ(Cli({"worker-token", "revoke", token_id}).code, 0);
  bool revoked = false;
  json after = Cli({"worker-token", "list", "--output", "json"}).Json();
  for (const auto& t : after["items"]) {
    if (t["id"] == token_id) revoked = !t["revokedAt"].is_null();
  }
  EXPECT_TRUE(revoked);

  CliRun tenant = Cli({"tenant", "create", "cli-made", "--name", "From the CLI"}, kAdminKey);
  ASSERT_EQ(tenant.code, 0) << tenant.err;
  EXPECT_NE(Cli({"tenant", "list"}, kAdminKey).out.find("cli-made"), std::string::npos);
  CliRun refused = Cli({"tenant", "create", "nope"}, MemberKey("acme"));
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("(HTTP 403)"), std::string::npos) << refused.err;

  EXPECT_EQ(Cli({"retention", "get"}).out, "30 days\n");
  ASSERT_EQ(Cli({"retention", "set", "7"}).code, 0);
  EXPECT_EQ(Cli({"retention", "get", "--output", "json"}).Json()["retentionDays"], 7);
  EXPECT_EQ(Cli({"retention", "set", "seven"}).code, 2);

  CliRun created = Flovyn({"schedule", "create", "--file", "-"}, Env(),
                          R"({"name":"nightly","cron":"0 3 * * *","workflow":{"kind":"report"}})");
  ASSERT_EQ(created.code, 0) << created.err;
  std::string sched = created.out.substr(0, created.out.find('\n'));
  EXPECT_NE(Cli({"schedule", "list"}).out.find("nightly"), std::string::npos);
  ASSERT_EQ(Cli({"schedule", "pause", sched}).code, 0);
  EXPECT_EQ(Cli({"schedule", "show", sched, "--output", "json"}).Json()["paused"], true);
  ASSERT_EQ(Cli({"schedule", "resume", sched}).code, 0);
  ASSERT_EQ(Cli({"schedule", "trigger", sched}).code, 0);
  EXPECT_EQ(Cli({"workflow", "list", "--kind", "report", "--output", "json"}).Json()["items"].size(), 1u);
  ASSERT_EQ(Cli({"schedule", "delete", sched}).code, 0);
  EXPECT_EQ(Cli({"schedule", "show", sched}).code, 4);
  EXPECT_EQ(Cli({"eventhook", "sources", "--output", "json"}).Json()["items"].size(), 0u);
  ASSERT_EQ(s_.Rest("POST", "/api/tenants/acme/eventhook/sources",
                    R"({"slug":"hooks","verifier":{"type":"api_key","header":"X-Key"},"secret":"key-0123456789"})")
                .status,
            201);
  EXPECT_NE(Cli({"eventhook", "sources"}).out.find("hooks"), std::string::npos);
  ASSERT_EQ(HttpRequest("POST", s_.http_port(), "/api/tenants/acme/eventhook/in/hooks", R"({"n":1})",
                        {{"X-Key", "key-0123456789"}, {"Content-Type", "application/json"}})
                .status,
            202);
  json events = Cli({"eventhook", "events", "--output", "json"}).Json();
  ASSERT_EQ(events["items"].size(), 1u) << events.dump();
  std::string event_id = events["items"][0]["id"].get<std::string>();
  EXPECT_NE(Cli({"eventhook", "events"}).out.find(event_id), std::string::npos);
  CliRun again = Cli({"eventhook", "reprocess", event_id});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(Cli({"eventhook", "reprocess", "00000000-0000-4000-8000-000000000000"}).code, 4);
}

TEST_F(FlovynCliTest, ProfilesEnvironmentAndFlagsInThatOrderOfPrecedence) {
  auto dir = std::filesystem::temp_directory_path() / ("flovyn-cli-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string config = (dir / "config.toml").string();
  std::string url = "http://127.0.0.1:" + std::to_string(s_.http_port());
  CliRun saved = Flovyn({"profile", "set", "work", "--config", config, "--server", url, "--api-key", TenantKey("acme"),
                         "--tenant", "acme"});
  ASSERT_EQ(saved.code, 0) << saved.err;
  EXPECT_EQ(std::filesystem::status(config).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none)
      << "the file holds keys";
  CliRun listed = Flovyn({"profile", "list", "--config", config});
  EXPECT_NE(listed.out.find("work"), std::string::npos);
  EXPECT_EQ(listed.out.find(TenantKey("acme")), std::string::npos) << "keys are not printed";
  // The profile alone is enough.
  CliRun by_profile = Flovyn({"workflow", "list", "--profile", "work", "--config", config});
  EXPECT_EQ(by_profile.code, 0) << by_profile.err;
  CliRun by_env = Flovyn({"workflow", "list"}, {"FLOVYN_CONFIG=" + config, "FLOVYN_PROFILE=work"});
  EXPECT_EQ(by_env.code, 0) << by_env.err;
  // The environment beats the profile, and a flag beats the environment.
  CliRun env_key = Flovyn({"workflow", "list", "--profile", "work", "--config", config}, {"FLOVYN_API_KEY=wrong-key"});
  EXPECT_EQ(env_key.code, 1);
  EXPECT_NE(env_key.err.find("(HTTP 401)"), std::string::npos) << env_key.err;
  CliRun flag_key =
      Flovyn({"workflow", "list", "--profile", "work", "--config", config, "--api-key", TenantKey("acme")},
             {"FLOVYN_API_KEY=wrong-key"});
  EXPECT_EQ(flag_key.code, 0) << flag_key.err;
  EXPECT_EQ(Flovyn({"workflow", "list", "--profile", "absent", "--config", config}).code, 2);
  // Nobody listening: exit 3.
  CliRun down = Flovyn({"workflow", "list", "--server", "http://127.0.0.1:" + std::to_string(FreePort()), "--tenant",
                        "acme", "--timeout-ms", "2000"});
  EXPECT_EQ(down.code, 3);
  EXPECT_NE(down.err.find("cannot reach"), std::string::npos) << down.err;
  std::filesystem::remove_all(dir);
}

TEST_F(FlovynCliTest, EveryCommandHasHelpAndBadUsageIsExitTwo) {
  CliRun help = Flovyn({"--help"});
  ASSERT_EQ(help.code, 0);
  std::vector<std::string> commands;
  std::istringstream in(help.out.substr(help.out.find("Commands:") + 10, help.out.find("Options for") - 10));
  for (std::string line; std::getline(in, line) && !line.empty();) {
    auto first = line.find_first_not_of(' ');
    auto words = line.substr(first, line.find("  ", first) - first);
    commands.push_back(words.substr(0, words.find(" <")));
  }
  ASSERT_GE(commands.size(), 30u) << help.out;
  for (const auto& c : commands) {
    std::vector<std::string> args;
    std::istringstream w(c);
    for (std::string word; w >> word;) {
      if (word != "bash") args.push_back(word);
    }
    args.push_back("--help");
    CliRun h = Flovyn(args);
    EXPECT_EQ(h.code, 0) << c << ": " << h.err;
    EXPECT_EQ(h.out.rfind("Usage: flovyn " + c.substr(0, c.find(" bash")), 0), 0u) << c << ": " << h.out;
  }
  EXPECT_EQ(Flovyn({}).code, 2);
  EXPECT_EQ(Flovyn({"workflow"}).code, 2);
  EXPECT_NE(Flovyn({"workflow", "--help"}).out.find("workflow start"), std::string::npos);
  EXPECT_EQ(Flovyn({"workflow", "explode"}).code, 2);
  CliRun extra = Flovyn({"workflow", "show"}, Env());
  EXPECT_EQ(extra.code, 2);
  EXPECT_NE(extra.err.find("usage: flovyn workflow show <id>"), std::string::npos) << extra.err;
  CliRun unknown = Flovyn({"workflow", "list", "--follow"}, Env());
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("has no option --follow"), std::string::npos) << unknown.err;
  EXPECT_EQ(Flovyn({"workflow", "list", "--server", "http://x"}).code, 2) << "no tenant";
  EXPECT_EQ(Flovyn({"workflow", "list", "--output", "yaml"}, Env()).code, 2);
}

TEST_F(FlovynCliTest, BashCompletionCompletesCommandsVerbsAndOptions) {
  CliRun script = Flovyn({"completion", "bash"});
  ASSERT_EQ(script.code, 0);
  auto dir = std::filesystem::temp_directory_path() / ("flovyn-comp-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "c.sh") << script.out;
  auto complete = [&](const std::string& line) {
    std::string probe = "source " + (dir / "c.sh").string() + "; COMP_WORDS=(" + line +
                        "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _flovyn; echo \"${COMPREPLY[*]}\"";
    std::string out;
    RunCommand("bash -c " + Quote(probe), &out);
    return out;
  };
  EXPECT_NE(complete("flovyn wor").find("workflow"), std::string::npos);
  EXPECT_NE(complete("flovyn wor").find("worker-token"), std::string::npos);
  std::string verbs = complete("flovyn workflow ''");
  for (const char* v : {"start", "list", "show", "events", "signal", "cancel", "result"}) {
    EXPECT_NE(verbs.find(v), std::string::npos) << v << ": " << verbs;
  }
  EXPECT_NE(complete("flovyn workflow events x --fol").find("--follow"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flovyn::testing
