#include "signin_flood.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace flovyn::testing {

using Clock = std::chrono::steady_clock;

long ProcessKb(int pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  }
  return 0;
}

namespace {

// Liveness probes every 50 ms until `stop`; latencies in ms.
void Probe(int port, const std::atomic<bool>& stop, std::vector<double>& out) {
  while (!stop) {
    auto t0 = Clock::now();
    HttpGet(port, "/api/health/live", std::chrono::seconds(5));
    out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Probes liveness from construction until Finish, which writes the latencies and the
// process's memory into the result.
class LiveProbe {
 public:
  LiveProbe(int port, int pid) : pid_(pid), thread_(Probe, port, std::cref(stop_), std::ref(live_)) {}
  void Finish(FloodResult& r) {
    stop_ = true;
    thread_.join();
    if (!live_.empty()) {
      std::sort(live_.begin(), live_.end());
      r.live_p50_ms = live_[live_.size() / 2];
      r.live_p99_ms = live_[std::min(live_.size() - 1, live_.size() * 99 / 100)];
      r.live_max_ms = live_.back();
    }
    r.rss_peak_kb = ProcessKb(pid_, "VmHWM");
    r.rss_end_kb = ProcessKb(pid_, "VmRSS");
  }

 private:
  int pid_;
  std::atomic<bool> stop_{false};
  std::vector<double> live_;
  std::thread thread_;
};

}  // namespace

FloodResult Quiet(int app_port, int pid, std::chrono::seconds duration) {
  FloodResult r;
  LiveProbe probe(app_port, pid);
  std::this_thread::sleep_for(duration);
  probe.Finish(r);
  return r;
}

FloodResult RunSignInFlood(int app_port, int pid, const FloodOptions& o) {
  FloodResult r;
  std::mutex mu;
  LiveProbe probe(app_port, pid);

  // One visitor: its cookie and CSRF token serve every guess (the form is all an attacker needs).
  ConsoleClient visitor(app_port);
  visitor.Get("/sign-in");
  auto start = Clock::now();
  auto end = start + o.duration;
  // Open loop: sender k starts its guesses at start + (k + n * senders) / rate, whatever the answers.
  const int senders = std::max(1, static_cast<int>(o.per_second));
  std::vector<std::thread> threads;
  for (int k = 0; k < senders; ++k) {
    threads.emplace_back([&, k] {
      std::mt19937_64 rng(static_cast<uint64_t>(k) * 7919 + 1);
      ConsoleClient c = visitor;
      for (int n = 0;; ++n) {
        auto due = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>((k + static_cast<double>(n) * senders) / o.per_second));
        if (due >= end) break;
        std::this_thread::sleep_until(due);
        std::string who = std::to_string(rng() % 1000000000);
        std::string addr =
            "10." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256);
        auto res = c.Post("/sign-in", {{"email", "guess" + who + "@example.com"}, {"password", "guess-" + who}},
                          {{"X-Forwarded-For", addr}});
        std::lock_guard<std::mutex> l(mu);
        ++r.sent;
        ++r.statuses[res.status];
      }
    });
  }
  // Midway, the real user signs in from their own address, retrying as Retry-After says.
  std::this_thread::sleep_until(start + o.duration / 2);
  ConsoleClient user(app_port);
  user.Get("/sign-in");
  auto t0 = Clock::now();
  while (Clock::now() - t0 < std::chrono::seconds(15)) {
    ++r.sign_in_tries;
    auto res =
        user.Post("/sign-in", {{"email", o.email}, {"password", o.password}}, {{"X-Forwarded-For", "192.0.2.10"}});
    if (res.status == 303 && res.headers["location"] == "/overview") {
      r.signed_in = true;
      break;
    }
    int wait = res.headers.count("retry-after") ? std::max(1, std::atoi(res.headers["retry-after"].c_str())) : 1;
    std::this_thread::sleep_for(std::chrono::seconds(std::min(wait, 2)));
  }
  r.sign_in_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  for (auto& t : threads) t.join();
  probe.Finish(r);
  return r;
}

}  // namespace flovyn::testing
