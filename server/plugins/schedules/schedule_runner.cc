#include "schedule_runner.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace flovyn::plugins {

namespace schedule_metric {
using T = metrics::MetricType;
const metrics::MetricSpec kFires{"flovyn_schedule_fires_total",
                                 T::kCounter,
                                 "Workflows started by schedules, by trigger (schedule, manual, backfill).",
                                 {"trigger"},
                                 "Schedules"};
const metrics::MetricSpec kSkips{"flovyn_schedule_skips_total",
                                 T::kCounter,
                                 "Fire times not run, by reason (overlap: the previous run was still going; "
                                 "catchup: missed beyond the catch-up window or its maximum).",
                                 {"reason"},
                                 "Schedules"};
const metrics::MetricSpec kLateness{"flovyn_schedule_lateness_seconds",
                                    T::kHistogram,
                                    "How long after its fire time a scheduled workflow was started.",
                                    {},
                                    "Schedules"};
}  // namespace schedule_metric

const std::vector<const metrics::MetricSpec*>& ScheduleMetricSpecs() {
  static const std::vector<const metrics::MetricSpec*> all{&schedule_metric::kFires, &schedule_metric::kSkips,
                                                           &schedule_metric::kLateness};
  return all;
}

namespace {
// Missed fire times counted one by one up to this many; a longer gap skips the rest at once.
constexpr int kMaxEnumerated = 100000;
}  // namespace

// What one pass over a schedule changes, applied at the end of its transaction.
struct ScheduleRunner::Pass {
  Advance advance;
  Instant now{};
  std::vector<ScheduleRun> runs;
  int64_t skipped_overlap = 0, skipped_catchup = 0;
  std::vector<std::string> fired_triggers;
  std::vector<double> lateness;
};

void ScheduleRunner::Start() {
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void ScheduleRunner::Stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void ScheduleRunner::Wake() {
  {
    MutexLock l(mu_);
    woken_ = true;
  }
  cv_.NotifyAll();
}

void ScheduleRunner::Loop() {
  constexpr int kBatch = 50;
  while (true) {
    auto handled = RunDue(kBatch);
    if (!handled.ok()) spdlog::warn("schedules: {}", handled.status().message());
    auto wake_at = std::chrono::steady_clock::now() + max_sleep_;
    if (handled.ok() && *handled >= kBatch) wake_at = std::chrono::steady_clock::now();  // more are due
    auto earliest = handled.ok() ? ScheduleStore(pool_).EarliestDue() : std::optional<Instant>();
    if (earliest.ok() && *earliest) {
      auto in = std::max(std::chrono::milliseconds(0), **earliest - InstantNow());
      wake_at = std::min(wake_at, std::chrono::steady_clock::now() + in);
    }
    MutexLock l(mu_);
    while (!stopping_ && !woken_ && std::chrono::steady_clock::now() < wake_at) cv_.WaitUntil(mu_, wake_at);
    if (stopping_) return;
    woken_ = false;
  }
}

StatusOr<int> ScheduleRunner::RunDue(int limit) {
  std::vector<Pass> passes;
  // One transaction for the batch: the claims, the workflows started and the schedules moved on
  // commit together (one commit for up to `limit` fire times).
  Status s = engine_.Run([&](engine::Unit& u) -> Status {
    passes.clear();
    auto due = ScheduleStore::ClaimDue(u.tx(), limit);
    if (!due.ok()) return due.status();
    Instant now = InstantNow();
    for (Schedule& sch : *due) {
      if (Status h = Handle(u, sch, now, passes); !h.ok()) return h;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  for (const Pass& p : passes) Count(p);  // after the commit: a rolled-back pass is not counted
  return static_cast<int>(passes.size());
}

Status ScheduleRunner::Handle(engine::Unit& u, Schedule& s, Instant now, std::vector<Pass>& passes) {
  db::Tx& tx = u.tx();
  Pass p;
  p.now = now;
  p.advance.next_fire_at = s.next_fire_at;
  p.advance.buffered_fire_at = s.buffered_fire_at;
  auto rule = s.spec.Rule(s.created_at);
  if (!rule.ok()) {  // the zone left the system's database: stop rather than guess
    spdlog::warn("schedule {}: {}; it will not fire", s.id, rule.status().message());
    p.advance.next_fire_at.reset();
    p.advance.buffered_fire_at.reset();
    passes.push_back(std::move(p));
    return ScheduleStore::Apply(tx, s.id, passes.back().advance);
  }
  if (s.buffered_fire_at) {
    bool running = false;
    if (s.last_execution_id) {
      auto r = ScheduleStore::Running(tx, *s.last_execution_id);
      if (!r.ok()) return r.status();
      running = *r;
    }
    if (!running) {
      Instant buffered = *s.buffered_fire_at;
      p.advance.buffered_fire_at.reset();
      s.buffered_fire_at.reset();
      if (Status st = FireOne(u, s, p, buffered, "schedule", false); !st.ok()) return st;
    }
  }
  if (s.next_fire_at && *s.next_fire_at <= now) {
    const auto window = std::chrono::milliseconds(s.spec.catchup_window_ms);
    std::vector<Instant> due;
    std::optional<Instant> t = s.next_fire_at;
    for (int n = 0; t && *t <= now; ++n) {
      if (n == kMaxEnumerated) t = rule->Next(now - window);  // a very long gap: jump to the window
      if (!t || *t > now) break;
      if (now - *t > window) {
        ++p.skipped_catchup;
      } else {
        due.push_back(*t);
      }
      t = rule->Next(*t);
    }
    const auto keep = static_cast<size_t>(std::max(0, s.spec.catchup_max));
    if (due.size() > keep) {  // the most recent ones run
      p.skipped_catchup += static_cast<int64_t>(due.size() - keep);
      due.erase(due.begin(), due.end() - static_cast<std::ptrdiff_t>(keep));
    }
    for (Instant f : due) {
      if (Status st = FireOne(u, s, p, f, "schedule", true); !st.ok()) return st;
    }
    if (t && s.spec.end_at && *t > *s.spec.end_at) t.reset();
    p.advance.next_fire_at = t;
  }
  p.advance.skips = p.skipped_overlap + p.skipped_catchup;
  if (Status st = Record(tx, s.id, p); !st.ok()) return st;
  passes.push_back(std::move(p));
  return Status::Ok();
}

Status ScheduleRunner::Record(db::Tx& tx, const std::string& id, const Pass& p) {
  if (Status st = ScheduleStore::Apply(tx, id, p.advance); !st.ok()) return st;
  for (const auto& run : p.runs) {
    if (Status st = ScheduleStore::RecordRun(tx, id, run); !st.ok()) return st;
  }
  return Status::Ok();
}

void ScheduleRunner::Count(const Pass& p) {
  if (metrics_ == nullptr) return;
  for (const auto& trig : p.fired_triggers) metrics_->fires.With({trig})->Inc();
  for (double l : p.lateness) metrics_->lateness.Observe(l);
  if (p.skipped_overlap > 0) metrics_->skips.With({"overlap"})->Inc(static_cast<double>(p.skipped_overlap));
  if (p.skipped_catchup > 0) metrics_->skips.With({"catchup"})->Inc(static_cast<double>(p.skipped_catchup));
}

Status ScheduleRunner::FireOne(engine::Unit& u, Schedule& s, Pass& p, Instant fire, const std::string& trigger,
                               bool overlap) {
  db::Tx& tx = u.tx();
  ScheduleRun run{fire, trigger, "started", std::nullopt, (p.now - fire).count(), ""};
  bool running = false;
  if (overlap && s.spec.overlap != Overlap::kAllowAll && s.last_execution_id) {
    auto r = ScheduleStore::Running(tx, *s.last_execution_id);
    if (!r.ok()) return r.status();
    running = *r;
  }
  if (running && s.spec.overlap == Overlap::kSkip) {
    run.outcome = "skipped: the previous run was still going";
    ++p.skipped_overlap;
  } else if (running && s.spec.overlap == Overlap::kBufferOne) {
    if (s.buffered_fire_at) {
      run.outcome = "skipped: one run is already buffered";
      ++p.skipped_overlap;
    } else {
      run.outcome = "buffered until the previous run ends";
      s.buffered_fire_at = fire;
      p.advance.buffered_fire_at = fire;
    }
  } else {
    if (running) {  // cancel_previous
      Status c = engine_.Cancel(engine::TenantId(s.tenant_id), engine::ExecutionId(*s.last_execution_id),
                                "replaced by the schedule's run for " + FormatInstant(fire));
      if (!c.ok() && c.code() != StatusCode::kFailedPrecondition) return c;
      run.outcome = "started (the previous run was cancelled)";
    }
    auto started = StartWorkflow(u, s, fire, trigger);
    if (!started.ok()) return started.status();
    run.execution_id = started->execution_id;
    s.last_execution_id = started->execution_id;
    p.advance.last_execution_id = started->execution_id;
    if (started->created) {
      ++p.advance.fires;
      p.fired_triggers.push_back(trigger);
      if (trigger == "schedule") p.lateness.push_back(static_cast<double>(run.lateness_ms) / 1000.0);
    } else {
      run.outcome = "already started for this fire time";
    }
  }
  p.runs.push_back(std::move(run));
  return Status::Ok();
}

StatusOr<engine::StartResult> ScheduleRunner::StartWorkflow(engine::Unit& u, const Schedule& s, Instant fire,
                                                            const std::string& trigger) {
  engine::StartWorkflowRequest req;
  req.kind = s.spec.kind;
  req.queue = s.spec.queue;
  req.input_json = s.spec.input_json;
  // The fire time is the key: a repeated pass, another replica or a backfill of a time that
  // already ran finds the same execution. Manual triggers are keyed by their own time.
  req.idempotency_key = "schedule:" + s.id + ":" + (trigger == "manual" ? "manual:" : "") + FormatInstant(fire);
  return engine_.StartWorkflowIn(u, engine::TenantId(s.tenant_id), req);
}

StatusOr<std::vector<ScheduleRun>> ScheduleRunner::Fire(const std::string& tenant, const std::string& id,
                                                        const std::vector<Instant>& times, const std::string& trigger) {
  std::unique_ptr<Pass> done;
  Status s = engine_.Run([&](engine::Unit& u) -> Status {
    db::Tx& tx = u.tx();
    auto sch = ScheduleStore::Lock(tx, tenant, id);
    if (!sch.ok()) return sch.status();
    auto p = std::make_unique<Pass>();
    p->now = InstantNow();
    p->advance.next_fire_at = sch->next_fire_at;
    p->advance.buffered_fire_at = sch->buffered_fire_at;
    for (Instant t : times) {
      if (Status st = FireOne(u, *sch, *p, t, trigger, trigger == "manual"); !st.ok()) return st;
    }
    p->advance.skips = p->skipped_overlap;
    if (Status st = Record(tx, sch->id, *p); !st.ok()) return st;
    done = std::move(p);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  Count(*done);
  return done->runs;
}

}  // namespace flovyn::plugins
