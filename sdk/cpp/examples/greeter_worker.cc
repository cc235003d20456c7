// An example worker: the "greet" workflow runs one "shout" task and completes with a greeting;
// the "approval" workflow waits for the promise "approval" and completes with its value.
//
//   FLOVYN_GRPC_TARGET=127.0.0.1:9090 FLOVYN_WORKER_TOKEN=fwt_... flovyn-greeter-worker
//
// Prints "registered <worker id>" once the server accepted it; exits 3 when the server refuses
// the token, 0 on SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "flovyn/sdk/client.h"

namespace {

using flovyn::sdk::History;
using nlohmann::json;
namespace v1 = flovyn::v1;

volatile std::sig_atomic_t g_stop = 0;

std::vector<v1::WorkflowCommand> Greet(const History& h) {
  if (h.Count("TASK_SCHEDULED") == 0) return {flovyn::sdk::ScheduleTask("shout", h.Input()), flovyn::sdk::Suspend()};
  auto done = h.OfType("TASK_COMPLETED");
  if (done.empty()) return {flovyn::sdk::Suspend()};
  json out = json::parse(done[0]->payload_json())["output"];
  return {flovyn::sdk::Complete(json{{"greeting", out}}.dump())};
}

std::vector<v1::WorkflowCommand> Approval(const History& h) {
  if (h.Count("PROMISE_CREATED") == 0) return {flovyn::sdk::CreatePromise("approval"), flovyn::sdk::Suspend()};
  auto resolved = h.OfType("PROMISE_RESOLVED");
  if (!resolved.empty()) {
    json value = json::parse(resolved[0]->payload_json())["value"];
    return {flovyn::sdk::Complete(json{{"approved", value}}.dump())};
  }
  if (h.Count("PROMISE_REJECTED") > 0 || h.Count("PROMISE_TIMED_OUT") > 0) return {flovyn::sdk::Fail("not approved")};
  return {flovyn::sdk::Suspend()};
}

std::string Shout(const v1::Task& t) {
  json in = json::parse(t.input_json(), nullptr, false);
  std::string who =
      in.is_object() && in.contains("name") && in["name"].is_string() ? in["name"].get<std::string>() : "world";
  for (auto& c : who) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return json("HELLO, " + who + "!").dump();
}

const char* Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

int main() {
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  flovyn::sdk::ClientOptions options;
  options.target = Env("FLOVYN_GRPC_TARGET", "127.0.0.1:9090");
  options.token = Env("FLOVYN_WORKER_TOKEN", "");
  flovyn::sdk::Client client(options);
  flovyn::sdk::Worker worker(client, {.name = Env("FLOVYN_WORKER_NAME", "greeter"),
                                      .queue = Env("FLOVYN_QUEUE", "default"),
                                      .poll_timeout = std::chrono::milliseconds(2000)});
  worker.RegisterWorkflow("greet", Greet);
  worker.RegisterWorkflow("approval", Approval);
  worker.RegisterTask("shout", Shout);
  grpc::Status s = worker.Start();
  if (!s.ok()) {
    std::printf("refused: %d %s\n", static_cast<int>(s.error_code()), s.error_message().c_str());
    std::fflush(stdout);
    return s.error_code() == grpc::StatusCode::UNAUTHENTICATED || s.error_code() == grpc::StatusCode::PERMISSION_DENIED
               ? 3
               : 1;
  }
  std::printf("registered %s\n", worker.id().c_str());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  worker.Stop();
  return 0;
}
