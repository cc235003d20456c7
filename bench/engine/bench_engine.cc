// Engine latency driver (prints figures; not a test). Against a running flovyn-server:
//   latency: one waiting poller, one task at a time; schedule-to-poll p50/p99.
// (Throughput is bench_sdk's `jobs` mode.)
// Usage: bench_engine TARGET TENANT latency SAMPLES
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "flovyn/sdk/client.h"

using Clock = std::chrono::steady_clock;
using namespace flovyn;

int Latency(sdk::Client& client, int samples) {
  std::string queue = "latency-" + std::to_string(Clock::now().time_since_epoch().count());
  std::string worker_id;
  v1::RegisterWorkerRequest reg;
  reg.set_name("bench-latency");
  if (!client.RegisterWorker(reg, &worker_id).ok()) return 1;
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    Clock::time_point got;
    bool ok = false;
    std::thread poller([&] {
      v1::PollTaskRequest req;
      req.set_worker_id(worker_id);
      req.set_queue(queue);
      req.set_timeout_ms(10000);
      v1::PollTaskResponse res;
      if (client.PollTask(req, &res).ok() && res.has_work()) {
        got = Clock::now();
        ok = true;
        (void)client.CompleteTask(worker_id, res.task(), "null");
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    v1::SubmitTaskRequest req;
    req.set_kind("ping");
    req.set_queue(queue);
    std::string id;
    auto sent = Clock::now();
    (void)client.SubmitTask(req, &id);
    poller.join();
    if (ok) ms.push_back(std::chrono::duration<double, std::milli>(got - sent).count());
  }
  std::sort(ms.begin(), ms.end());
  if (ms.empty()) return 1;
  std::printf("%zu %.2f %.2f\n", ms.size(), ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: bench_engine TARGET TENANT latency SAMPLES\n");
    return 2;
  }
  sdk::ClientOptions o;
  o.target = argv[1];
  o.tenant = argv[2];
  sdk::Client client(o);
  std::string mode = argv[3];
  if (mode == "latency") return Latency(client, std::atoi(argv[4]));
  return 2;
}
