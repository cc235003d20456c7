#include "engine/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include <spdlog/spdlog.h>

namespace flovyn::engine {

namespace metric {
using T = metrics::MetricType;
const metrics::MetricSpec kRetentionDeleted{
    "flovyn_retention_deleted_total",
    T::kCounter,
    "Rows the retention sweep deleted, by table (executions, events, tasks, timers, promises, state, attributes).",
    {"table"},
    "Engine"};
const metrics::MetricSpec kRetentionExported{"flovyn_retention_exported_total",
                                             T::kCounter,
                                             "Executions written to the retention export directory before deletion.",
                                             {},
                                             "Engine"};
const metrics::MetricSpec kRetentionLag{
    "flovyn_retention_lag_seconds",
    T::kGauge,
    "How long the oldest finished execution past its tenant's retention has waited for deletion (0: none waits).",
    {},
    "Engine"};
const metrics::MetricSpec kRetentionErrors{"flovyn_retention_errors_total",
                                           T::kCounter,
                                           "Retention batches that failed and were rolled back (retried next pass).",
                                           {},
                                           "Engine"};
}  // namespace metric

Retention::Retention(Store& store, RetentionOptions options, metrics::Registry* metrics)
    : store_(store), options_(std::move(options)) {
  if (metrics != nullptr) {
    deleted_ = &metrics->CounterOf(metric::kRetentionDeleted);
    exported_ = metrics->CounterOf(metric::kRetentionExported).With({});
    errors_ = metrics->CounterOf(metric::kRetentionErrors).With({});
    lag_ = metrics->GaugeOf(metric::kRetentionLag).With({});
  }
}

void Retention::Start() {
  if (!options_.enabled) return;
  {
    MutexLock l(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Retention::Stop() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void Retention::Loop() {
  while (true) {
    {
      MutexLock l(mu_);
      auto until = std::chrono::steady_clock::now() + options_.interval;
      while (!stop_ && cv_.WaitUntil(mu_, until)) {
      }
      if (stop_) return;
    }
    auto done = Pass(true);
    if (!done.ok()) spdlog::warn("retention: {}", done.status().message());
  }
}

StatusOr<Store::Purged> Retention::RunOnce() { return Pass(false); }

StatusOr<Store::Purged> Retention::Pass(bool paced) {
  Store::Purged all;
  std::function<Status(const std::vector<std::string>&)> exporter;
  if (!options_.export_dir.empty()) exporter = [this](const std::vector<std::string>& l) { return Export(l); };
  Status failed = Status::Ok();
  std::chrono::steady_clock::duration last{};
  for (bool first = true;; first = false) {
    if (paced && !first && !Pause(std::max<std::chrono::steady_clock::duration>(options_.batch_pause, last))) break;
    auto t0 = std::chrono::steady_clock::now();
    auto batch = store_.PurgeExpired(options_.batch_size, exporter);
    last = std::chrono::steady_clock::now() - t0;
    if (!batch.ok()) {
      if (errors_ != nullptr) errors_->Inc();
      failed = batch.status();
      break;
    }
    Count(*batch);
    all.executions += batch->executions;
    all.events += batch->events;
    all.tasks += batch->tasks;
    all.timers += batch->timers;
    all.promises += batch->promises;
    all.state += batch->state;
    all.attributes += batch->attributes;
    if (batch->executions < options_.batch_size && batch->tasks < options_.batch_size) break;
  }
  if (auto lag = store_.RetentionLag(); lag.ok() && lag_ != nullptr) lag_->Set(*lag);
  if (!failed.ok()) return failed;
  if (all.executions > 0 || all.tasks > 0) {
    spdlog::info("retention: deleted {} execution(s) with {} event(s), {} task(s)", all.executions, all.events,
                 all.tasks);
  }
  return all;
}

bool Retention::Pause(std::chrono::steady_clock::duration d) {
  MutexLock l(mu_);
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop_ && cv_.WaitUntil(mu_, until)) {
  }
  return !stop_;
}

void Retention::Count(const Store::Purged& p) {
  if (deleted_ == nullptr) return;
  const std::pair<const char*, int64_t> counts[] = {
      {"executions", p.executions}, {"events", p.events}, {"tasks", p.tasks},          {"timers", p.timers},
      {"promises", p.promises},     {"state", p.state},   {"attributes", p.attributes}};
  for (const auto& [table, n] : counts) {
    if (n > 0) deleted_->With({table})->Inc(static_cast<double>(n));
  }
}

// Appends the lines to today's file and syncs it; the delete commits only after this returns.
Status Retention::Export(const std::vector<std::string>& lines) {
  if (lines.empty()) return Status::Ok();
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char name[64];
  std::strftime(name, sizeof(name), "/executions-%Y-%m-%d.jsonl", &utc);
  std::string path = options_.export_dir + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Unavailable("retention export: cannot open " + path);
  std::string data;
  for (const auto& l : lines) data += l + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Unavailable("retention export: cannot write " + path);
    }
    off += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Unavailable("retention export: cannot sync " + path);
  if (exported_ != nullptr) exported_->Inc(static_cast<double>(lines.size()));
  return Status::Ok();
}

}  // namespace flovyn::engine
