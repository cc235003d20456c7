// Runs schedules: one thread per replica sleeps until the earliest due fire time (or a wake-up,
// or at most `max_sleep`), claims due schedules with SKIP LOCKED, and for each fire time applies
// the catch-up window and the overlap policy, starts the workflow with the fire time as its
// idempotency key, records the run and moves the schedule to its next fire time, all in one
// transaction with the engine's own rows: a fire time's workflow, its run and the schedule's next
// fire time commit together or not at all, and the key makes a repeat find the same execution.
#pragma once

#include <thread>

#include "engine/store.h"
#include "engine/unit.h"
#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"
#include "schedule_store.h"

namespace flovyn::plugins {

namespace schedule_metric {
extern const metrics::MetricSpec kFires, kSkips, kLateness;
}
const std::vector<const metrics::MetricSpec*>& ScheduleMetricSpecs();

struct ScheduleMetrics {
  explicit ScheduleMetrics(metrics::Registry& r)
      : fires(r.CounterOf(schedule_metric::kFires)),
        skips(r.CounterOf(schedule_metric::kSkips)),
        lateness(*r.HistogramOf(schedule_metric::kLateness).With({})) {}
  metrics::Family<metrics::Counter>& fires;
  metrics::Family<metrics::Counter>& skips;
  metrics::Histogram& lateness;
};

class ScheduleRunner {
 public:
  ScheduleRunner(db::Pool& pool, engine::Store& engine, ScheduleMetrics* metrics, std::chrono::milliseconds max_sleep)
      : pool_(pool), engine_(engine), metrics_(metrics), max_sleep_(max_sleep) {}
  ~ScheduleRunner() { Stop(); }
  void Start();
  void Stop();
  // A schedule changed here: look again now rather than at the next planned wake-up.
  void Wake();

  // One pass over what is due; the number of schedules handled.
  StatusOr<int> RunDue(int limit = 50);
  // Starts the schedule's workflow for each time (trigger "manual": now, under the overlap
  // policy; "backfill": each given past fire time, all of them).
  StatusOr<std::vector<ScheduleRun>> Fire(const std::string& tenant, const std::string& id,
                                          const std::vector<Instant>& times, const std::string& trigger);

 private:
  struct Pass;
  void Loop();
  Status Handle(engine::Unit& u, Schedule& s, Instant now, std::vector<Pass>& passes);
  static Status Record(db::Tx& tx, const std::string& id, const Pass& p);
  void Count(const Pass& p);
  // Applies the overlap policy to one fire time and records the outcome.
  Status FireOne(engine::Unit& u, Schedule& s, Pass& p, Instant fire, const std::string& trigger, bool overlap);
  StatusOr<engine::StartResult> StartWorkflow(engine::Unit& u, const Schedule& s, Instant fire,
                                              const std::string& trigger);

  db::Pool& pool_;
  engine::Store& engine_;
  ScheduleMetrics* metrics_;
  const std::chrono::milliseconds max_sleep_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool woken_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace flovyn::plugins
