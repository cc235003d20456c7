// An example worker: the "greet" workflow runs one "shout" task and completes with a greeting;
// the "approval" workflow waits for the promise "approval" and completes with its value. Both
// are coroutines (docs/sdk-cpp.md).
//
//   FLOVYN_GRPC_TARGET=127.0.0.1:9090 FLOVYN_WORKER_TOKEN=fwt_... flovyn-greeter-worker
//
// Prints "registered <worker id>" once the server accepted it; exits 3 when the server refuses
// the token, 0 on SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "flovyn/sdk/client.h"

namespace {

using flovyn::Json;
using flovyn::Workflow;
using flovyn::WorkflowContext;
namespace v1 = flovyn::v1;

volatile std::sig_atomic_t g_stop = 0;

Workflow<Json> Greet(WorkflowContext& ctx, Json input) {
  Json greeting = co_await ctx.Task("shout", input);
  co_return Json{{"greeting", greeting}};
}

Workflow<Json> Approval(WorkflowContext& ctx, Json) {
  try {
    Json value = co_await ctx.Promise("approval");
    co_return Json{{"approved", value}};
  } catch (const flovyn::WorkflowError&) {  // rejected or timed out
  }
  throw std::runtime_error("not approved");
}

std::string Shout(const v1::Task& t) {
  Json in = Json::parse(t.input_json(), nullptr, false);
  std::string who =
      in.is_object() && in.contains("name") && in["name"].is_string() ? in["name"].get<std::string>() : "world";
  for (auto& c : who) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return Json("HELLO, " + who + "!").dump();
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
  options.tenant = Env("FLOVYN_TENANT", "");  // with an admin key or with security off
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
