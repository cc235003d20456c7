// The coroutine examples (sdk/cpp/examples/shop_worker.cc) as a real worker process against a
// real server: the saga, the fan-out over 100 tasks, the approval with reminders (including a
// worker killed with SIGKILL mid-workflow and another process finishing by replay), and the
// membership driven by signals that continues as new runs.
#include <signal.h>

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine_harness.h"

namespace flovyn::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ShopWorker {
 public:
  ShopWorker(EngineServer& s, const std::string& name) : ShopWorker(s.ClientFor("acme"), name) {}
  ShopWorker(const sdk::ClientOptions& o, const std::string& name)
      : p_(FLOVYN_SHOP_WORKER_BINARY, {},
           {{"FLOVYN_GRPC_TARGET", o.target}, {"FLOVYN_WORKER_TOKEN", o.token}, {"FLOVYN_WORKER_NAME", name}}) {
    for (int i = 0; i < 200 && p_.Log().find("registered") == std::string::npos; ++i) std::this_thread::sleep_for(25ms);
    EXPECT_NE(p_.Log().find("registered"), std::string::npos) << p_.Log();
  }
  ChildProcess& process() { return p_; }

 private:
  ChildProcess p_;
};

std::string Start(EngineServer& s, const std::string& kind, const json& input) {
  json body = {{"kind", kind}, {"input", input}};
  return s.RestJson("POST", "/api/tenants/acme/workflows", body.dump()).value("id", "");
}

std::vector<std::string> TaskKinds(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e["type"] == "TASK_SCHEDULED") out.push_back(e["payload"]["kind"]);
  }
  return out;
}

json WaitEvent(EngineServer& s, const std::string& id, const std::string& type, const std::string& name) {
  for (int i = 0; i < 400; ++i) {
    for (const auto& e : s.Events("acme", id)) {
      if (e["type"] == type && e["payload"].value("name", "") == name) return e["payload"];
    }
    std::this_thread::sleep_for(25ms);
  }
  return nullptr;
}

TEST(SdkExamplesTest, TheOrderSagaCompletesAndAFailedShipmentIsUndoneInReverse) {
  EngineServer s;
  ShopWorker w(s, "shop");
  std::string ok = Start(s, "order", {{"sku", "mug"}, {"quantity", 2}, {"amount", 1200}});
  std::string bad = Start(s, "order", {{"sku", "vase"}, {"amount", 900}, {"fail_shipping", true}});
  auto good = s.WaitWorkflow("acme", ok, 30s);
  EXPECT_EQ(good["status"], "COMPLETED") << good.dump();
  EXPECT_EQ(good["output"]["parcel"].get<std::string>().rfind("parcel-", 0), 0u) << good.dump();
  auto undone = s.WaitWorkflow("acme", bad, 30s);
  EXPECT_EQ(undone["status"], "FAILED") << undone.dump();
  EXPECT_EQ(undone["error"], "order undone: carrier refused the parcel") << undone.dump();
  EXPECT_EQ(TaskKinds(s.Events("acme", bad)),
            std::vector<std::string>({"reserve", "charge", "ship", "refund", "release"}));
  auto state = s.RestJson("GET", "/api/tenants/acme/workflows/" + bad + "/state");
  EXPECT_EQ(state["state"]["stage"], "compensated") << state.dump();
}

TEST(SdkExamplesTest, ABatchFansOutAHundredTasksAndJoinsThem) {
  EngineServer s;
  ShopWorker w(s, "shop");
  std::string id = Start(s, "batch", {{"items", 100}});
  auto done = s.WaitWorkflow("acme", id, 60s);
  ASSERT_EQ(done["status"], "COMPLETED") << done.dump();
  int expected = 0;
  for (int i = 0; i < 100; ++i) expected += i % 7;
  EXPECT_EQ(done["output"], json({{"items", 100}, {"total", expected}}));
  EXPECT_EQ(TaskKinds(s.Events("acme", id)).size(), 100u);
}

void Signal(EngineServer& s, const std::string& id, const json& payload) {
  json body = {{"name", "event"}, {"payload", payload}};
  auto r = s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", body.dump());
  EXPECT_EQ(r.status, 202) << r.body;
}

TEST(SdkExamplesTest, AMembershipDrivenBySignalsBillsEachPeriodAndContinuesAsNewRunsWithItsTotals) {
  EngineServer s;
  ShopWorker w(s, "shop");
  std::string first = Start(s, "membership", {{"plan", "pro"}, {"periods_per_run", 2}});
  Signal(s, first, {{"op", "renew"}});
  Signal(s, first, {{"op", "renew"}});
  auto ended = s.WaitWorkflow("acme", first, 30s);
  ASSERT_EQ(ended["status"], "COMPLETED") << ended.dump();
  std::string second = ended["output"].value("continuedAsNew", "");
  ASSERT_FALSE(second.empty()) << ended.dump();
  auto started = s.Events("acme", second).front();
  EXPECT_EQ(started["payload"]["continuedFrom"], first);
  EXPECT_EQ(started["payload"]["input"]["periods"], 2);
  EXPECT_EQ(started["payload"]["input"]["billed"], 60);
  Signal(s, second, {{"op", "renew"}});
  Signal(s, second, {{"op", "stop"}});
  auto last = s.WaitWorkflow("acme", second, 30s);
  EXPECT_EQ(last["status"], "COMPLETED") << last.dump();
  EXPECT_EQ(last["output"], json({{"periods", 3}, {"billed", 90}}));
  EXPECT_EQ(TaskKinds(s.Events("acme", first)), std::vector<std::string>({"bill", "bill"}));
  EXPECT_EQ(TaskKinds(s.Events("acme", second)), std::vector<std::string>({"bill"}));
}

TEST(SdkExamplesTest, AWorkerKilledMidApprovalIsReplacedAndTheNextProcessFinishesByReplay) {
  EngineServer s;
  std::string id;
  {
    ShopWorker first(s, "first");
    id = Start(s, "approval", {{"max_reminders", 1}, {"remind_after_ms", 1000}});
    // The first promise times out, a reminder goes out, and the second promise waits.
    json second = WaitEvent(s, id, "PROMISE_CREATED", "approval-1");
    ASSERT_TRUE(second.is_object()) << first.process().Log();
    first.process().Signal(SIGKILL);
    first.process().Wait(5s);
  }
  ShopWorker next(s, "next");
  json second = WaitEvent(s, id, "PROMISE_CREATED", "approval-1");
  auto r = s.Rest("POST", "/api/tenants/acme/promises/" + second["promiseId"].get<std::string>() + "/resolve",
                  R"({"value":"approved"})");
  EXPECT_EQ(r.status, 200) << r.body;
  auto done = s.WaitWorkflow("acme", id, 30s);
  EXPECT_EQ(done["output"], json({{"decision", "approved"}, {"by", "approver"}, {"reminders", 1}})) << done.dump();
  EXPECT_EQ(TaskKinds(s.Events("acme", id)), std::vector<std::string>({"remind"})) << "one reminder, never repeated";
}

}  // namespace
}  // namespace flovyn::testing
