#include "flovyn/health/monitor.h"

#include <atomic>
#include <thread>

#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::health {

struct Monitor::Run {
  Mutex mu;
  CondVar cv;
  Clock::time_point deadline;
  std::map<std::string, CheckResult> results GUARDED_BY(mu);
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
  MutexLock l(mu_);
  while (live_threads_ != 0) threads_cv_.Wait(mu_);
}

void Monitor::Register(std::string name, CheckFn check) {
  MutexLock l(mu_);
  checks_.emplace_back(std::move(name), std::move(check));
}

uint64_t Monitor::runs() const {
  MutexLock l(mu_);
  return runs_;
}

void Monitor::Evaluate(std::function<void(const Report&)> done) {
  UniqueLock l(mu_);
  if (has_cache_ && Clock::now() - cached_at_ <= max_age_) {
    std::shared_ptr<const Report> r = cached_;
    l.Unlock();
    done(*r);
    return;
  }
  waiters_.push_back(std::move(done));
  if (!running_) StartRun();
}

Report Monitor::EvaluateBlocking() {
  Mutex m;
  CondVar cv;
  bool ready = false;
  Report out;
  Evaluate([&](const Report& r) {
    MutexLock l(m);
    out = r;
    ready = true;
    cv.NotifyOne();
  });
  MutexLock l(m);
  while (!ready) cv.Wait(m);
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
        MutexLock l(run->mu);
        run->results[name] = r;
      }
      run->cv.NotifyAll();
      MutexLock l(mu_);
      if (--live_threads_ == 0) threads_cv_.NotifyAll();
    }).detach();
  }
  std::thread([this, run] {
    {
      MutexLock l(run->mu);
      while (run->results.size() != run->expected && run->cv.WaitUntil(run->mu, run->deadline)) {
      }
    }
    Finish(run);
    MutexLock l(mu_);
    if (--live_threads_ == 0) threads_cv_.NotifyAll();
  }).detach();
}

void Monitor::Finish(const std::shared_ptr<Run>& run) {
  static std::atomic<uint64_t> last_id{0};
  Report report;
  report.id = ++last_id;
  {
    MutexLock l(run->mu);
    report.checks = run->results;
  }
  std::vector<std::function<void(const Report&)>> waiters;
  {
    MutexLock l(mu_);
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
    cached_ = std::make_shared<const Report>(report);
    cached_at_ = Clock::now();
    has_cache_ = true;
    running_ = false;
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w(report);
}

}  // namespace flovyn::health
