// SDK benchmark (prints figures; not a test), against a running flovyn-server (security off):
//   throughput STYLE STEPS N   N workflows of STEPS sequential task steps, started at once and run
//                              by one worker (2 workflow pollers, 8 task pollers) written as
//                              coroutines (STYLE "coroutine") or as a decider over the raw history
//                              (STYLE "decider", the reference); prints "STYLE STEPS N seconds rate".
//   long MODE STEPS            one workflow of STEPS sequential tasks, one decision per step, run by
//                              a single-threaded loop (it also runs the tasks) that measures each
//                              decision: the bytes the poll brought and the worker CPU the decision
//                              took. MODE "cached" keeps the replay between steps, as the worker's
//                              cache does (the server sends only new events); "full" replays the
//                              whole history each step. Prints the means for steps 1-10 and the
//                              last 10.
//   sleep N MS [POLLERS [FIRES]] N workflows, started one after another, each sleeping MS once (one
//                              worker, POLLERS workflow pollers, default 2); the
//                              worker measures how late each resumes (from the moment the code
//                              asked to sleep to the moment it runs again, minus MS). FIRES
//                              "worker" (default): the worker fires the timers of the workflows it
//                              keeps; "server": the server fires them and hands the workflows
//                              back (WorkerOptions::fire_timers off). Prints "N p50 p99 max" in
//                              milliseconds.
//   jobs W N [BATCH]           N no-op standalone tasks submitted by 4 threads while W threads of
//                              the SDK's client poll (up to BATCH tasks a poll, default 1) and
//                              complete them; prints
//                              "N seconds rate p50 p99", the latencies from submit to the task in a
//                              worker's hands, in milliseconds (bench/peers/run).
//   closed STEPS N CLIENTS     CLIENTS closed-loop clients each start a workflow of STEPS sequential
//                              task steps and wait for its end (the worker's on_workflow_closed, run
//                              once the end is recorded) before starting the next, N in all; one
//                              worker (8 workflow pollers, 8 task pollers) runs them. Prints
//                              "N seconds rate p50 p99", start-to-end latencies in milliseconds.
// Usage: bench_sdk GRPC_TARGET TENANT (throughput STYLE STEPS N | long MODE STEPS | sleep N MS |
//                                      jobs W N | closed STEPS N CLIENTS)
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <absl/synchronization/mutex.h>

#include "flovyn/sdk/client.h"
#include "flovyn/sdk/replay.h"

using namespace flovyn;
using Clock = std::chrono::steady_clock;

namespace {

int g_steps = 1;

Workflow<int> Steps(WorkflowContext& ctx, Json) {
  int v = 0;
  for (int i = 0; i < g_steps; ++i) v = co_await ctx.Task<int>("step", v);
  co_return v;
}

std::vector<v1::WorkflowCommand> StepsDecider(const sdk::History& h) {
  auto done = h.OfType("TASK_COMPLETED");
  if (h.Count("TASK_SCHEDULED") > done.size()) return {sdk::Suspend()};
  if (static_cast<int>(done.size()) == g_steps) {
    return {sdk::Complete(Json::parse(done.back()->payload_json())["output"].dump())};
  }
  std::string in = done.empty() ? "0" : Json::parse(done.back()->payload_json())["output"].dump();
  return {sdk::ScheduleTask("step", in), sdk::Suspend()};
}

int Throughput(sdk::Client& client, const std::string& style, int n) {
  sdk::Worker worker(client, {.name = "bench",
                              .queue = "bench-" + style,
                              .workflow_pollers = 2,
                              .task_pollers = 8,
                              .poll_timeout = std::chrono::milliseconds(1000)});
  worker.RegisterTask("step", [](const v1::Task& t) { return std::to_string(std::stoi(t.input_json()) + 1); });
  if (style == "coroutine") {
    worker.RegisterWorkflow("steps", Steps);
  } else {
    worker.RegisterWorkflow("steps", StepsDecider);
  }
  if (!worker.Start().ok()) return 1;
  std::vector<std::string> ids;
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    v1::StartWorkflowResponse r;
    if (client.StartWorkflow("steps", "null", &r, "bench-" + style).ok()) ids.push_back(r.execution_id());
  }
  for (const auto& id : ids) {  // each completes with its last event WORKFLOW_COMPLETED
    while (true) {
      std::vector<v1::WorkflowEvent> ev;
      if (client.GetEvents(id, &ev).ok() && !ev.empty() && ev.back().type() == "WORKFLOW_COMPLETED") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  worker.Stop();
  std::printf("%s %d %zu %.2f %.1f\n", style.c_str(), g_steps, ids.size(), secs,
              static_cast<double>(ids.size()) / secs);
  return 0;
}

Workflow<int> LongRun(WorkflowContext& ctx, Json) {
  int v = 0;
  for (int i = 0; i < g_steps; ++i) v = co_await ctx.Task<int>("inc", v);
  co_return v;
}

// Runs the one task the workflow waits for.
bool RunTask(sdk::Client& client, const std::string& worker) {
  v1::PollTaskRequest poll;
  poll.set_worker_id(worker);
  poll.set_queue("bench-long");
  poll.set_timeout_ms(5000);
  v1::PollTaskResponse res;
  if (!client.PollTask(poll, &res).ok() || !res.has_work()) return false;
  return client.CompleteTask(worker, res.task(), std::to_string(std::stoi(res.task().input_json()) + 1)).ok();
}

double ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

int Long(sdk::Client& client, bool cached) {
  std::string worker;
  v1::RegisterWorkerRequest reg;
  reg.set_name("bench-long");
  if (!client.RegisterWorker(reg, &worker).ok()) return 1;
  v1::StartWorkflowResponse started;
  if (!client.StartWorkflow("long", "null", &started, "bench-long").ok()) return 1;
  WorkflowFactory wf = MakeWorkflow(LongRun);
  std::vector<std::pair<double, double>> per_step;  // bytes polled, CPU microseconds
  std::unique_ptr<detail::Replay> kept;
  while (true) {
    v1::PollWorkflowRequest poll;
    poll.set_worker_id(worker);
    poll.set_queue("bench-long");
    poll.set_timeout_ms(5000);
    v1::PollWorkflowResponse res;
    if (!client.PollWorkflow(poll, &res).ok() || !res.has_work()) continue;
    double cpu0 = ThreadCpuMicros();
    std::vector<v1::WorkflowEvent> events(res.events().begin(), res.events().end());
    Decision d;
    if (cached && kept && res.history_after() == kept->last_sequence()) {
      d = kept->Continue(events);
    } else {
      if (res.history_after() != 0) return 1;  // not what this loop keeps
      kept = std::make_unique<detail::Replay>(res.execution().id(), events);
      d = kept->Run(wf);
    }
    double cpu = ThreadCpuMicros() - cpu0;
    if (!d.violation.empty()) return 1;
    v1::SubmitWorkflowCommandsRequest sub;
    sub.set_worker_id(worker);
    sub.set_execution_id(res.execution().id());
    sub.set_expected_sequence(kept->last_sequence());
    sub.set_keep_cached(cached);
    for (auto& c : d.commands) *sub.add_commands() = c;
    v1::SubmitWorkflowCommandsResponse out;
    if (!client.SubmitCommands(sub, &out).ok() || d.completed) break;
    cpu0 = ThreadCpuMicros();
    if (cached) kept->Append({out.events().begin(), out.events().end()});
    per_step.emplace_back(static_cast<double>(res.ByteSizeLong()), cpu + ThreadCpuMicros() - cpu0);
    if (!RunTask(client, worker)) return 1;
  }
  auto mean = [&per_step](size_t from, size_t to) {
    std::pair<double, double> m{0, 0};
    for (size_t i = from; i < to; ++i) {
      m.first += per_step[i].first;
      m.second += per_step[i].second;
    }
    double n = static_cast<double>(to - from);
    return std::make_pair(m.first / n, m.second / n);
  };
  size_t n = per_step.size();
  auto early = mean(0, std::min<size_t>(10, n));
  auto late = mean(n >= 10 ? n - 10 : 0, n);
  std::printf("%s %d %zu %.0f %.1f %.0f %.1f\n", cached ? "cached" : "full", g_steps, n, early.first, early.second,
              late.first, late.second);
  return 0;
}

std::mutex g_sleep_mu;
std::map<int, Clock::time_point> g_asleep;  // when each workflow's code asked to sleep
std::vector<double> g_late;                 // how late each woke, in milliseconds
std::set<int> g_woke;
int g_sleep_ms = 1000;
int g_sleep_pollers = 2;
bool g_worker_fires = true;

Workflow<int> Sleeper(WorkflowContext& ctx, Json input) {
  int i = input.get<int>();
  {
    std::lock_guard<std::mutex> l(g_sleep_mu);
    g_asleep.emplace(i, Clock::now());  // the first activation's moment; a replay keeps it
  }
  co_await ctx.Sleep(std::chrono::milliseconds(g_sleep_ms));
  {
    std::lock_guard<std::mutex> l(g_sleep_mu);
    if (g_woke.insert(i).second) {
      g_late.push_back(std::chrono::duration<double, std::milli>(Clock::now() - g_asleep[i]).count() - g_sleep_ms);
    }
  }
  co_return i;
}

int Sleep(sdk::Client& client, int n) {
  sdk::Worker worker(client, {.name = "bench-sleep",
                              .queue = "bench-sleep",
                              .workflow_pollers = g_sleep_pollers,
                              .poll_timeout = std::chrono::milliseconds(1000),
                              .fire_timers = g_worker_fires});
  worker.RegisterWorkflow("sleeper", Sleeper);
  if (!worker.Start().ok()) return 1;
  for (int i = 0; i < n; ++i) {
    v1::StartWorkflowResponse r;
    if (!client.StartWorkflow("sleeper", std::to_string(i), &r, "bench-sleep").ok()) return 1;
  }
  auto until = Clock::now() + std::chrono::milliseconds(g_sleep_ms) + std::chrono::seconds(60);
  while (Clock::now() < until) {
    {
      std::lock_guard<std::mutex> l(g_sleep_mu);
      if (static_cast<int>(g_late.size()) == n) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  worker.Stop();
  std::lock_guard<std::mutex> l(g_sleep_mu);
  if (static_cast<int>(g_late.size()) != n) return 1;
  std::sort(g_late.begin(), g_late.end());
  auto at = [](double q) { return g_late[std::min(g_late.size() - 1, static_cast<size_t>(q * g_late.size()))]; };
  std::printf("%d %.1f %.1f %.1f\n", n, at(0.5), at(0.99), g_late.back());
  return 0;
}

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The run's time is from t0 to `end` (default: now).
void PrintRun(size_t n, Clock::time_point t0, std::vector<double> lat, Clock::time_point end = Clock::now()) {
  double secs = std::chrono::duration<double>(end - t0).count();
  std::sort(lat.begin(), lat.end());
  auto at = [&lat](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(q * lat.size()))]; };
  std::printf("%zu %.2f %.1f %.1f %.1f\n", n, secs, static_cast<double>(n) / secs, at(0.5), at(0.99));
}

int Jobs(sdk::Client& client, int workers, int n, int batch) {
  std::string queue = "jobs-" + std::to_string(workers) + "-" + std::to_string(Clock::now().time_since_epoch().count());
  std::string worker_id;
  v1::RegisterWorkerRequest reg;
  reg.set_name("bench-jobs");
  if (!client.RegisterWorker(reg, &worker_id).ok()) return 1;
  std::atomic<int> completed{0};
  double submitted_ms = 0;  // when the last submission was acknowledged
  std::mutex mu;
  std::vector<double> lat;
  auto t0 = Clock::now();
  // The last completion's acknowledgement ends the run: the other workers' long polls still
  // waiting for work (up to their timeout) are not part of it.
  Clock::time_point last_done = t0;
  std::vector<std::thread> threads;
  auto give_up = t0 + std::chrono::minutes(5);
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      while (completed < n && Clock::now() < give_up) {
        v1::PollTaskRequest req;
        req.set_worker_id(worker_id);
        req.set_queue(queue);
        req.set_timeout_ms(500);
        req.set_max_tasks(batch);
        v1::PollTaskResponse res;
        if (!client.PollTask(req, &res).ok() || !res.has_work()) continue;
        std::vector<v1::Task> got{res.task()};
        got.insert(got.end(), res.more_tasks().begin(), res.more_tasks().end());
        std::vector<double> ms;
        for (const auto& t : got) ms.push_back(Millis(Clock::now() - t0) - std::stod(t.input_json()));
        std::vector<bool> ok(got.size(), false);
        if (got.size() == 1) {
          ok[0] = client.CompleteTask(worker_id, got[0], "null").ok();
        } else {  // a batch's results in one call
          v1::CompleteTasksResponse out;
          if (client.CompleteTasks(worker_id, got, std::vector<std::string>(got.size(), "null"), &out).ok()) {
            for (int i = 0; i < out.outcomes_size(); ++i) ok[static_cast<size_t>(i)] = out.outcomes(i).code() == 0;
          }
        }
        std::lock_guard<std::mutex> l(mu);
        for (size_t i = 0; i < got.size(); ++i) {
          if (!ok[i]) continue;
          if (++completed == n) last_done = Clock::now();
          lat.push_back(ms[i]);
        }
      }
    });
  }
  for (int s = 0; s < 4; ++s) {
    threads.emplace_back([&, s] {
      for (int i = s; i < n; i += 4) {
        v1::SubmitTaskRequest req;
        req.set_kind("noop");
        req.set_queue(queue);
        req.set_input_json(std::to_string(Millis(Clock::now() - t0)));  // when it was submitted
        std::string id;
        (void)client.SubmitTask(req, &id);
      }
      std::lock_guard<std::mutex> l(mu);
      submitted_ms = std::max(submitted_ms, Millis(Clock::now() - t0));
    });
  }
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "submitted in %.0f ms\n", submitted_ms);
  PrintRun(static_cast<size_t>(completed.load()), t0, lat, completed == n ? last_done : Clock::now());
  return completed == n ? 0 : 1;
}

int Closed(sdk::Client& client, int n, int clients) {
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> ended;
  std::string queue = "closed-" + std::to_string(g_steps);
  sdk::Worker worker(client, {.name = "bench-closed",
                              .queue = queue,
                              .workflow_pollers = 8,
                              .task_pollers = 8,
                              .poll_timeout = std::chrono::milliseconds(1000),
                              .on_workflow_closed = [&](const std::string& id) {
                                std::lock_guard<std::mutex> l(mu);
                                ended.insert(id);
                                cv.notify_all();
                              }});
  worker.RegisterTask("step", [](const v1::Task& t) { return std::to_string(std::stoi(t.input_json()) + 1); });
  worker.RegisterWorkflow("steps", Steps);
  if (!worker.Start().ok()) return 1;
  std::atomic<int> next{0};
  std::vector<double> lat;
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      while (next++ < n) {
        auto start = Clock::now();
        v1::StartWorkflowResponse r;
        if (!client.StartWorkflow("steps", "null", &r, queue).ok()) continue;
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return ended.count(r.execution_id()) > 0; });
        lat.push_back(Millis(Clock::now() - start));
      }
    });
  }
  for (auto& t : threads) t.join();
  PrintRun(lat.size(), t0, lat);
  worker.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: bench_sdk GRPC_TARGET TENANT (throughput STYLE STEPS N | long MODE STEPS | sleep N MS)\n");
    return 2;
  }
  // As in flovyn-server: Debian's Abseil keeps deadlock-detection graphs for every absl::Mutex
  // (the SDK's and gRPC's) unless told not to; a production worker turns them off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sdk::Client client({.target = argv[1], .tenant = argv[2], .call_timeout = std::chrono::seconds(30)});
  std::string mode = argv[3];
  if (mode == "throughput" && argc >= 7) {
    g_steps = std::stoi(argv[5]);
    return Throughput(client, argv[4], std::stoi(argv[6]));
  }
  if (mode == "long" && argc >= 6) {
    g_steps = std::stoi(argv[5]);
    return Long(client, std::string(argv[4]) == "cached");
  }
  if (mode == "sleep" && argc >= 6) {
    g_sleep_ms = std::stoi(argv[5]);
    if (argc >= 7) g_sleep_pollers = std::stoi(argv[6]);
    if (argc >= 8) g_worker_fires = std::string(argv[7]) != "server";
    return Sleep(client, std::stoi(argv[4]));
  }
  if (mode == "jobs" && argc >= 6) {
    return Jobs(client, std::stoi(argv[4]), std::stoi(argv[5]), argc >= 7 ? std::stoi(argv[6]) : 1);
  }
  if (mode == "closed" && argc >= 7) {
    g_steps = std::stoi(argv[4]);
    return Closed(client, std::stoi(argv[5]), std::stoi(argv[6]));
  }
  std::fprintf(stderr, "unknown mode\n");
  return 2;
}
