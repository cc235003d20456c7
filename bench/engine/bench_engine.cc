// Engine throughput driver (prints figures; not a test). Against a running flovyn-server:
//   throughput: W workers long-poll a queue while submitters schedule N standalone tasks;
//               reports tasks scheduled+dispatched+completed per second; BATCH (default 1) is
//               the tasks each poll may claim (max_tasks);
//   latency:    one waiting poller, one task at a time; schedule-to-poll p50/p99.
// Usage: bench_engine TARGET TENANT throughput WORKERS TASKS [BATCH] | latency SAMPLES
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "flovyn/sdk/client.h"

using Clock = std::chrono::steady_clock;
using namespace flovyn;

int Throughput(sdk::Client& client, int workers, int tasks, int batch) {
  std::string queue =
      "bench-" + std::to_string(workers) + "-" + std::to_string(Clock::now().time_since_epoch().count());
  std::atomic<int> completed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::string worker_id;
  v1::RegisterWorkerRequest reg;
  reg.set_name("bench");
  if (!client.RegisterWorker(reg, &worker_id).ok()) return 1;
  auto t0 = Clock::now();
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      while (!stop) {
        v1::PollTaskRequest req;
        req.set_worker_id(worker_id);
        req.set_queue(queue);
        req.set_timeout_ms(500);
        req.set_max_tasks(batch);
        v1::PollTaskResponse res;
        if (!client.PollTask(req, &res).ok() || !res.has_work()) continue;
        if (client.CompleteTask(worker_id, res.task(), "null").ok()) ++completed;
        for (const auto& t : res.more_tasks()) {
          if (client.CompleteTask(worker_id, t, "null").ok()) ++completed;
        }
      }
    });
  }
  std::vector<std::thread> submitters;
  for (int s = 0; s < 4; ++s) {
    submitters.emplace_back([&, s] {
      for (int i = s; i < tasks; i += 4) {
        v1::SubmitTaskRequest req;
        req.set_kind("noop");
        req.set_queue(queue);
        req.set_input_json("{}");
        std::string id;
        (void)client.SubmitTask(req, &id);
      }
    });
  }
  for (auto& t : submitters) t.join();
  while (completed < tasks && Clock::now() - t0 < std::chrono::minutes(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : threads) t.join();
  std::printf("%d %d %.3f %.1f\n", workers, completed.load(), secs, completed.load() / secs);
  return completed == tasks ? 0 : 1;
}

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
    std::fprintf(stderr, "usage: bench_engine TARGET TENANT throughput WORKERS TASKS | latency SAMPLES\n");
    return 2;
  }
  sdk::ClientOptions o;
  o.target = argv[1];
  o.tenant = argv[2];
  sdk::Client client(o);
  std::string mode = argv[3];
  if (mode == "throughput" && argc >= 6) {
    return Throughput(client, std::atoi(argv[4]), std::atoi(argv[5]), argc >= 7 ? std::atoi(argv[6]) : 1);
  }
  if (mode == "latency") return Latency(client, std::atoi(argv[4]));
  return 2;
}
