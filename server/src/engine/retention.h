// The retention sweep: every `interval` it deletes finished executions (and standalone tasks)
// past their tenant's retention period, in batches of `batch_size`, each batch one short
// transaction, until none is left; replicas share the work (SKIP LOCKED). Between two batches it
// pauses at least `batch_pause` and at least as long as the batch took, so a purge uses at most
// half of the database's time and claims keep their latency. With an export
// directory, each execution is first appended as one JSON line to
// <dir>/executions-<UTC date>.jsonl and the file synced before the delete commits (a crash in
// between exports an execution twice, never loses one). Runs on its own thread so a long purge
// never delays timers. Thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "engine/store.h"
#include "flovyn/core/mutex.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::engine {

struct RetentionOptions {
  bool enabled = true;
  std::chrono::milliseconds interval{60000};
  int batch_size = 100;
  std::chrono::milliseconds batch_pause{100};
  std::string export_dir;  // empty: no export
};

namespace metric {
extern const metrics::MetricSpec kRetentionDeleted, kRetentionExported, kRetentionLag, kRetentionErrors;
}

class Retention {
 public:
  Retention(Store& store, RetentionOptions options, metrics::Registry* metrics);
  ~Retention() { Stop(); }
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  void Start();
  // A batch in progress finishes (its transaction commits or rolls back); none starts after.
  void Stop();
  // One pass now, on the caller's thread: batches until fewer than batch_size were expired.
  // Returns what was deleted in all.
  StatusOr<Store::Purged> RunOnce();

 private:
  void Loop();
  // Batches until fewer than batch_size were expired; `paced` (the sweep's thread) pauses between
  // them and stops early on Stop().
  StatusOr<Store::Purged> Pass(bool paced);
  // Waits `d` or until Stop(); false when stopping.
  bool Pause(std::chrono::steady_clock::duration d);
  Status Export(const std::vector<std::string>& lines);
  void Count(const Store::Purged& p);

  Store& store_;
  RetentionOptions options_;
  metrics::Family<metrics::Counter>* deleted_ = nullptr;
  metrics::Counter* exported_ = nullptr;
  metrics::Counter* errors_ = nullptr;
  metrics::Gauge* lag_ = nullptr;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace flovyn::engine
