#include "flovyn/health/monitor.h"

#include <thread>

#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::health {

struct Monitor::Run {
  std::mutex mu;
  std::condition_variable cv;
  Clock::time_point deadline;
  std::map<std::string, CheckResult> results;  // guarded by mu
  size_t expected = 0;
};

Monitor::Monitor(std::chrono::milliseconds timeout, std::chrono::milliseconds max_age, metrics::Registry* metrics)
    : timeout_(timeout), max_age_(max_age) {
  if (metrics != nullptr) {
    status_gauge_ = &metrics->GaugeOf(metrics::catalogue::kHealthCheckUp);
    runs_counter_ = &metrics->CounterOf(metrics::catalogue::kHealthCheckRuns);
  }
}

Monitor::~Monitor() {
  std::unique_lock<std::mutex> l(mu_);
  threads_cv_.wait(l, [this] { return live_threads_ == 0; });
}

void Monitor::Register(std::string name, CheckFn check) {
  std::lock_guard<std::mutex> l(mu_);
  checks_.emplace_back(std::move(name), std::move(check));
}

uint64_t Monitor::runs() const {
  std::lock_guard<std::mutex> l(mu_);
  return runs_;
}

void Monitor::Evaluate(std::function<void(const Report&)> done) {
  std::unique_lock<std::mutex> l(mu_);
  if (has_cache_ && Clock::now() - cached_at_ <= max_age_) {
    Report r = cached_;
    l.unlock();
    done(r);
    return;
  }
  waiters_.push_back(std::move(done));
  if (!running_) StartRun();
}

Report Monitor::EvaluateBlocking() {
  std::mutex m;
  std::condition_variable cv;
  bool ready = false;
  Report out;
  Evaluate([&](const Report& r) {
    std::lock_guard<std::mutex> l(m);
    out = r;
    ready = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(m);
  cv.wait(l, [&] { return ready; });
  return out;
}

void Monitor::StartRun() {
  running_ = true;
  ++runs_;
  auto run = std::make_shared<Run>();
  run->deadline = Clock::now() + timeout_;
  run->expected = checks_.size();
  // Each check on its own thread so one slow dependency cannot delay the others; the
  // coordinator stops waiting at the deadline. Threads are counted so the destructor waits
  // for stragglers (bounded by the checks' own deadlines).
  live_threads_ += static_cast<int>(checks_.size()) + 1;
  for (const auto& [name, fn] : checks_) {
    std::thread([this, run, name = name, fn = fn] {
      auto t0 = Clock::now();
      CheckResult r = fn(run->deadline);
      if (r.latency_ms == 0) r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      {
        std::lock_guard<std::mutex> l(run->mu);
        run->results[name] = r;
      }
      run->cv.notify_all();
      std::lock_guard<std::mutex> l(mu_);
      if (--live_threads_ == 0) threads_cv_.notify_all();
    }).detach();
  }
  std::thread([this, run] {
    {
      std::unique_lock<std::mutex> l(run->mu);
      run->cv.wait_until(l, run->deadline, [&] { return run->results.size() == run->expected; });
    }
    Finish(run);
    std::lock_guard<std::mutex> l(mu_);
    if (--live_threads_ == 0) threads_cv_.notify_all();
  }).detach();
}

void Monitor::Finish(const std::shared_ptr<Run>& run) {
  Report report;
  {
    std::lock_guard<std::mutex> l(run->mu);
    report.checks = run->results;
  }
  std::vector<std::function<void(const Report&)>> waiters;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [name, fn] : checks_) {
      auto it = report.checks.find(name);
      if (it == report.checks.end()) {
        CheckResult r;
        r.up = false;
        r.latency_ms = static_cast<double>(timeout_.count());
        r.error = "timed out after " + std::to_string(timeout_.count()) + " ms";
        report.checks[name] = r;
      }
      const CheckResult& r = report.checks[name];
      if (!r.up) report.all_up = false;
      if (status_gauge_ != nullptr) {
        status_gauge_->With({name})->Set(r.up ? 1 : 0);
        runs_counter_->With({name, r.up ? "up" : "down"})->Inc();
      }
    }
    cached_ = report;
    cached_at_ = Clock::now();
    has_cache_ = true;
    running_ = false;
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w(report);
}

}  // namespace flovyn::health
