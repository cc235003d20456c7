// Scale probe (prints figures; not a test). Against a running flovyn-server (security off), for
// one tenant, it measures the operations users feel, each SAMPLES times, and prints one line of
// "name ms" per sample (bench/scale/run pools the lines of several rounds into percentiles):
//   start    POST /workflows (REST);
//   claim    PollWorkflow when work is waiting (the claim query), each claimed workflow then
//            completed so the next sample starts alike;
//   list     GET /workflows?limit=50, the first page;
//   deep     GET /workflows?limit=50 with a cursor 5000 items deep;
//   search   GET /workflows?q=customer = "c-7" (a search attribute), first page;
//   overview the two calls behind the console's overview (workflow-counts, workflows?limit=10).
// Usage: bench_scale GRPC_TARGET HTTP_PORT TENANT SAMPLES [claim]
//   with "claim" only the claim line (used while a purge runs).
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flovyn/http/client.h"
#include "flovyn/http/message.h"
#include "flovyn/sdk/client.h"

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using namespace flovyn;

namespace {

std::string base;  // http://127.0.0.1:PORT/api/tenants/TENANT

json Rest(const std::string& method, const std::string& path, const std::string& body = "") {
  http::ClientRequest req;
  req.method = method;
  req.url = base + path;
  req.body = body;
  req.timeout = std::chrono::seconds(60);
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  auto r = http::Fetch(req);
  if (!r.ok() || r->status >= 300) {
    std::fprintf(stderr, "%s %s failed: %s\n", method.c_str(), path.c_str(),
                 r.ok() ? r->body.substr(0, 200).c_str() : r.status().message().c_str());
    return nullptr;
  }
  return json::parse(r->body, nullptr, false);
}

void Report(const char* name, const std::vector<double>& ms) {
  for (double m : ms) std::printf("%s %.3f\n", name, m);
  std::fflush(stdout);
}

std::vector<double> Time(int samples, const std::function<void()>& op) {
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    auto t0 = Clock::now();
    op();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return ms;
}

// Starts `samples` workflows on a fresh queue, then claims each (timed) and completes it.
std::vector<double> Claims(sdk::Client& client, int samples) {
  std::string queue = "probe-" + std::to_string(Clock::now().time_since_epoch().count());
  for (int i = 0; i < samples; ++i) {
    v1::StartWorkflowResponse started;
    (void)client.StartWorkflow("probe", "{}", &started, queue);
  }
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("probe");
  (void)client.RegisterWorker(reg, &worker);
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    v1::PollWorkflowRequest poll;
    poll.set_worker_id(worker);
    poll.set_queue(queue);
    poll.set_timeout_ms(5000);
    v1::PollWorkflowResponse res;
    auto t0 = Clock::now();
    if (!client.PollWorkflow(poll, &res).ok() || !res.has_work()) continue;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    v1::SubmitWorkflowCommandsRequest sub;
    sub.set_worker_id(worker);
    sub.set_execution_id(res.execution().id());
    sub.set_expected_sequence(res.events(res.events_size() - 1).sequence());
    *sub.add_commands() = sdk::Complete("null");
    v1::SubmitWorkflowCommandsResponse out;
    (void)client.SubmitCommands(sub, &out);
  }
  return ms;
}

std::string DeepCursor() {
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    json r = Rest("GET", "/workflows?limit=500" + (cursor.empty() ? "" : "&cursor=" + cursor));
    if (!r.is_object() || !r["nextCursor"].is_string()) break;
    cursor = r["nextCursor"];
  }
  return cursor;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: bench_scale GRPC_TARGET HTTP_PORT TENANT SAMPLES [claim]\n");
    return 2;
  }
  std::string tenant = argv[3];
  int samples = std::stoi(argv[4]);
  base = std::string("http://127.0.0.1:") + argv[2] + "/api/tenants/" + tenant;
  sdk::ClientOptions o;
  o.target = argv[1];
  o.tenant = tenant;
  sdk::Client client(o);
  Report("claim", Claims(client, samples));
  if (argc > 5) return 0;
  Report("start", Time(samples, [] { Rest("POST", "/workflows", R"({"kind":"probe-start","queue":"nobody"})"); }));
  Report("list", Time(samples, [] { Rest("GET", "/workflows?limit=50"); }));
  std::string cursor = DeepCursor();
  Report("deep", Time(samples, [&cursor] { Rest("GET", "/workflows?limit=50&cursor=" + cursor); }));
  std::string q = http::UrlEncode(R"(customer = "c-7")");
  Report("search", Time(samples, [&q] { Rest("GET", "/workflows?limit=50&q=" + q); }));
  Report("overview", Time(samples, [] {
           Rest("GET", "/workflow-counts");
           Rest("GET", "/workflows?limit=10");
         }));
  return 0;
}
