// Example workflows written as coroutines (docs/sdk-cpp.md), in one worker process:
//   "order"    a saga: reserve stock, charge, ship; a failure undoes what was done, in reverse;
//   "batch"    fan-out/fan-in: one task per item (100 by default), joined;
//   "approval" a human approval: a promise with a timeout, a reminder task each time it passes,
//              and after `max_reminders` an escalation signal decides;
//   "membership" a long-lived subscription driven by signals: each {"op":"renew"} bills a period
//              (task "bill"), {"op":"stop"} ends it; every `periods_per_run` periods it continues
//              as a new run carrying its totals, so its history stays bounded.
//
//   FLOVYN_GRPC_TARGET=127.0.0.1:9090 FLOVYN_WORKER_TOKEN=fwt_... flovyn-shop-worker
//
// Prints "registered <worker id>" once the server accepted it; exits 0 on SIGTERM/SIGINT.
// FLOVYN_TASK_DELAY_MS slows each task down (the tests kill the worker mid-workflow with it).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "flovyn/sdk/client.h"

namespace shop {
struct OrderRequest {
  std::string sku;
  int quantity = 1;
  int amount = 0;
  bool fail_shipping = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OrderRequest, sku, quantity, amount, fail_shipping)
}  // namespace shop

namespace {

using flovyn::Json;
using flovyn::Workflow;
using flovyn::WorkflowContext;
using namespace std::chrono_literals;

volatile std::sig_atomic_t g_stop = 0;

Workflow<Json> Order(WorkflowContext& ctx, shop::OrderRequest in) {
  std::vector<std::pair<std::string, Json>> undo;  // compensations, run in reverse on failure
  try {
    ctx.State().Set("stage", "reserving");
    Json stock = {{"sku", in.sku}, {"qty", in.quantity}};
    std::string reservation = co_await ctx.Task<std::string>("reserve", stock);
    undo.emplace_back("release", reservation);
    ctx.State().Set("stage", "charging");
    std::string payment = co_await ctx.Task<std::string>("charge", in.amount);
    undo.emplace_back("refund", payment);
    ctx.State().Set("stage", "shipping");
    Json shipment = {{"sku", in.sku}, {"fail", in.fail_shipping}};
    std::string parcel = co_await ctx.Task<std::string>("ship", shipment, flovyn::TaskOptions().Attempts(2));
    ctx.State().Set("stage", "done");
    co_return Json{{"reservation", reservation}, {"payment", payment}, {"parcel", parcel}};
  } catch (const flovyn::TaskFailed& e) {
    ctx.State().Set("stage", "compensating");
    ctx.State().Set("failure", e.error);
  }
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) co_await ctx.Task(it->first, it->second);
  ctx.State().Set("stage", "compensated");
  throw std::runtime_error("order undone: " + ctx.State().Get("failure").value_or("").get<std::string>());
}

Workflow<Json> Batch(WorkflowContext& ctx, Json in) {
  int items = in.value("items", 100);
  std::vector<flovyn::Future<int>> parts;
  parts.reserve(items);
  for (int i = 0; i < items; ++i) parts.push_back(ctx.Task<int>("weigh", i));
  int total = 0;
  for (int w : co_await flovyn::All(ctx, std::move(parts))) total += w;
  co_return Json{{"items", items}, {"total", total}};
}

Workflow<Json> Approval(WorkflowContext& ctx, Json in) {
  int max_reminders = in.value("max_reminders", 2);
  auto wait = std::chrono::milliseconds(in.value("remind_after_ms", 60000));
  for (int reminders = 0; reminders <= max_reminders; ++reminders) {
    bool timed_out = false;
    try {
      Json decision = co_await ctx.Promise("approval-" + std::to_string(reminders), wait);
      co_return Json{{"decision", decision}, {"by", "approver"}, {"reminders", reminders}};
    } catch (const flovyn::TimedOut&) {
      timed_out = true;  // (C++ allows no co_await inside a handler)
    }
    if (timed_out && reminders < max_reminders) {
      Json reminder = {{"request", in}, {"reminder", reminders + 1}};
      co_await ctx.Task("remind", reminder);
    }
  }
  Json decision = co_await ctx.Signal("escalation");
  co_return Json{{"decision", decision}, {"by", "escalation"}, {"reminders", max_reminders}};
}

Workflow<Json> Membership(WorkflowContext& ctx, Json in) {
  int periods = in.value("periods", 0);
  int billed = in.value("billed", 0);
  int per_run = in.value("periods_per_run", 12);
  for (int i = 0; i < per_run; ++i) {
    Json event = co_await ctx.Signal("event");
    if (event.value("op", "") == "stop") co_return Json{{"periods", periods}, {"billed", billed}};
    Json period = {{"plan", in.value("plan", "basic")}, {"period", periods + 1}};
    billed += co_await ctx.Task<int>("bill", period);
    ++periods;
    ctx.State().Set("periods", periods);
  }
  // Signals not taken yet would not follow to the next run: this run takes exactly per_run.
  Json next = in;
  next["periods"] = periods;
  next["billed"] = billed;
  co_await ctx.ContinueAsNew(next);
  co_return nullptr;  // not reached
}

std::string Slowly(const std::string& result) {
  if (const char* d = std::getenv("FLOVYN_TASK_DELAY_MS"); d && *d) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(d)));
  }
  return result;
}

const char* Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

void RegisterTasks(flovyn::sdk::Worker& w) {
  using flovyn::v1::Task;
  w.RegisterTask("reserve", [](const Task& t) { return Slowly(Json("res-" + t.id().substr(0, 8)).dump()); });
  w.RegisterTask("charge", [](const Task& t) { return Slowly(Json("pay-" + t.id().substr(0, 8)).dump()); });
  w.RegisterTask("ship", [](const Task& t) {
    if (Json::parse(t.input_json()).value("fail", false)) throw flovyn::sdk::TaskFailure("carrier refused the parcel");
    return Slowly(Json("parcel-" + t.id().substr(0, 8)).dump());
  });
  w.RegisterTask("release", [](const Task&) { return Slowly("null"); });
  w.RegisterTask("refund", [](const Task&) { return Slowly("null"); });
  w.RegisterTask("weigh",
                 [](const Task& t) { return Slowly(Json(Json::parse(t.input_json()).get<int>() % 7).dump()); });
  w.RegisterTask("remind", [](const Task&) { return Slowly("null"); });
  w.RegisterTask("bill", [](const Task& t) {
    return Slowly(Json(Json::parse(t.input_json()).value("plan", "") == "pro" ? 30 : 10).dump());
  });
}

}  // namespace

int main() {
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  flovyn::sdk::Client client({.target = Env("FLOVYN_GRPC_TARGET", "127.0.0.1:9090"),
                              .token = Env("FLOVYN_WORKER_TOKEN", ""),
                              .tenant = Env("FLOVYN_TENANT", "")});
  flovyn::sdk::Worker worker(client, {.name = Env("FLOVYN_WORKER_NAME", "shop"),
                                      .queue = Env("FLOVYN_QUEUE", "default"),
                                      .workflow_pollers = 2,
                                      .task_pollers = 4,
                                      .poll_timeout = 2s});
  worker.RegisterWorkflow("order", Order);
  worker.RegisterWorkflow("batch", Batch);
  worker.RegisterWorkflow("approval", Approval);
  worker.RegisterWorkflow("membership", Membership);
  RegisterTasks(worker);
  grpc::Status s = worker.Start();
  if (!s.ok()) {
    std::printf("refused: %d %s\n", static_cast<int>(s.error_code()), s.error_message().c_str());
    return 1;
  }
  std::printf("registered %s\n", worker.id().c_str());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(100ms);
  worker.Stop();
  return 0;
}
