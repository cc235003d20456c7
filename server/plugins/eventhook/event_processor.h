// Turns received events into work, asynchronously and at least once, with each action made
// idempotent by a key taken from the event: a workflow started under an idempotency key, a task
// submitted under an id derived from the event and the route, a signal-with-start on the
// execution that key names, a promise resolved or rejected (settling it again is a no-op).
// Worker threads on every replica claim batches of due events with SKIP LOCKED and handle each
// batch in one transaction: the source's matching routes act through the engine's store (its
// operations join the transaction, each action in a savepoint), and each event's outcome is
// recorded; a failed attempt is retried with exponential backoff (skipping the routes that
// already succeeded) until it fails for good after `max_attempts`.
#pragma once

#include <thread>
#include <vector>

#include "engine/store.h"
#include "engine/unit.h"
#include "eventhook_store.h"
#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::plugins {

namespace eventhook_metric {
extern const metrics::MetricSpec kEvents, kProcessing;
}
const std::vector<const metrics::MetricSpec*>& EventhookMetricSpecs();

struct EventhookMetrics {
  explicit EventhookMetrics(metrics::Registry& r)
      : events(r.CounterOf(eventhook_metric::kEvents)),
        processing(*r.HistogramOf(eventhook_metric::kProcessing).With({})) {}
  // outcome: received, verified, rejected, limited, duplicate, routed, unrouted, failed, retried.
  void Count(const std::string& source, const char* outcome) { events.With({source, outcome})->Inc(); }
  metrics::Family<metrics::Counter>& events;
  metrics::Histogram& processing;
};

struct ProcessorOptions {
  int workers = 2;
  int max_attempts = 5;
  int64_t lease_ms = 60000;
  int64_t first_retry_ms = 1000, max_retry_ms = 300000;
  std::chrono::milliseconds idle_poll{250};
};

// What an action needs from a route's spec; the same checks the REST API makes on creation.
Status ValidateAction(const nlohmann::json& action);

class EventProcessor {
 public:
  EventProcessor(EventhookStore& store, engine::Store& engine, EventhookMetrics* metrics, ProcessorOptions options)
      : store_(store), engine_(engine), metrics_(metrics), options_(options) {}
  ~EventProcessor() { Stop(); }
  void Start();
  void Stop();
  void Wake();
  // Claims and handles one batch; how many events it handled.
  StatusOr<int> RunOnce(int limit = 10);

 private:
  // What one event's processing counts once the batch commits.
  struct Counted {
    std::string label;
    const char* outcome;
    double seconds;  // receipt to done; negative when not done
  };
  void Loop();
  StatusOr<Counted> Handle(engine::Unit& u, const StoredEvent& e, const std::vector<Route>& routes);
  // The action's result ({"route", "action", ids...}), or why it failed.
  StatusOr<nlohmann::json> Act(const Route& route, const InboundEvent& e, const std::string& tenant);

  EventhookStore& store_;
  engine::Store& engine_;
  EventhookMetrics* metrics_;
  const ProcessorOptions options_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t wakes_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace flovyn::plugins
