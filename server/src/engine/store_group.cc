// Group commit: concurrent units of work share one transaction (and one fsync). A caller of
// RunGrouped queues its unit; while fewer than group_commit_lanes groups are committing, a
// caller takes the queue's first group_commit_max units and commits them, and the others wait
// for their result. So under load the units that arrive while a group commits form the next
// group, and alone a unit commits at once.
#include <algorithm>
#include <memory>
#include <thread>

#include "engine/store.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

struct Store::Grouped {
  const std::function<Status(Unit&)>* work;
  std::string key;
  const char* operation;
  Status result;
  bool done = false;  // under group_mu_
  CondVar cv;
  // RunGroupedThen's: nobody waits; `then` gets the result and the entry is deleted.
  std::function<Status(Unit&)> owned_work;
  std::function<void(Status)> then;
};

Status Store::RunGrouped(const std::function<Status(Unit&)>& work, std::string order_key, const char* operation) {
  if (joined_unit_ != nullptr || options_.group_commit_max <= 1) return Run(work, operation);
  Grouped me{&work, std::move(order_key), operation};
  MutexLock l(group_mu_);
  group_queue_.push_back(&me);
  LeadGroups(&me);
  return me.result;
}

void Store::RunGroupedThen(std::function<Status(Unit&)> work, std::string order_key, std::function<void(Status)> then,
                           const char* operation) {
  if (joined_unit_ != nullptr || options_.group_commit_max <= 1) return then(Run(work, operation));
  UniqueLock l(group_mu_);
  if (group_queue_.size() < static_cast<size_t>(std::max(options_.group_commit_queue_max, 1))) {
    std::unique_ptr<Grouped> g(new Grouped{nullptr, std::move(order_key), operation});
    g->owned_work = std::move(work);
    g->work = &g->owned_work;
    g->then = std::move(then);
    group_queue_.push_back(g.release());  // deleted once answered, in LeadGroups
    LeadGroups(nullptr);
    return;
  }
  // The queue is full: this caller waits for its commit as RunGrouped's do, on its own thread
  // (so the handler threads, and their bounded queue, hold back whatever comes next).
  group_stats_.waited += 1;
  Grouped me{&work, std::move(order_key), operation};
  group_queue_.push_back(&me);
  LeadGroups(&me);
  l.Unlock();
  then(me.result);
}

// Commits groups from the queue's front while a lane is free: until `mine` is done (it waits
// when every lane is busy), or, for a caller that does not wait (`mine` null), until it finds the
// lanes busy or the queue empty. A queue whose first unit nobody waits for is led by whoever
// just committed, so every queued unit has a leader. Called, and returns, with group_mu_ held (it
// lets it go while committing and while answering).
void Store::LeadGroups(Grouped* mine) {
  while (mine == nullptr || !mine->done) {
    if (group_lanes_busy_ >= std::max(options_.group_commit_lanes, 1) || group_queue_.empty()) {
      if (mine == nullptr) return;
      mine->cv.Wait(group_mu_);
      continue;
    }
    ++group_lanes_busy_;
    if (options_.group_commit_window.count() > 0 &&
        group_queue_.size() < static_cast<size_t>(options_.group_commit_max)) {
      group_mu_.unlock();
      std::this_thread::sleep_for(options_.group_commit_window);
      group_mu_.lock();
    }
    std::vector<Grouped*> group;
    while (!group_queue_.empty() && group.size() < static_cast<size_t>(options_.group_commit_max)) {
      group.push_back(group_queue_.front());
      group_queue_.pop_front();
    }
    group_mu_.unlock();
    CommitGroup(group);
    group_mu_.lock();
    --group_lanes_busy_;
    // Under the lock: a waiter cannot return (and take its Grouped off its stack) before it.
    std::vector<Grouped*> answered;
    for (auto* g : group) {
      g->done = true;
      if (g->then) {
        answered.push_back(g);
      } else if (g != mine) {
        g->cv.NotifyOne();
      }
    }
    bool lead_next = !group_queue_.empty() && group_queue_.front()->then != nullptr;
    if (!group_queue_.empty() && !lead_next) group_queue_.front()->cv.NotifyOne();  // the next group's leader
    if (!answered.empty()) {
      group_mu_.unlock();
      for (auto* g : answered) {
        std::unique_ptr<Grouped> owned(g);  // RunGroupedThen's entry: nobody else refers to it now
        owned->then(owned->result);
      }
      group_mu_.lock();
    }
    if (lead_next && mine != nullptr && mine->done) {
      // Nobody waits at the front: lead it before returning.
      mine = nullptr;
    }
  }
}

Store::GroupStats Store::group_stats() const {
  MutexLock l(group_mu_);
  return group_stats_;
}

void Store::CommitGroup(std::vector<Grouped*>& group) {
  auto count = [&](int64_t units, int64_t reruns) {
    if (metrics_ != nullptr) metrics_->group_units.Observe(static_cast<double>(units));
    MutexLock l(group_mu_);
    group_stats_.commits += 1;
    group_stats_.units += units;
    group_stats_.reruns += reruns;
  };
  if (group.empty()) return;
  if (group.size() == 1) {
    group[0]->result = Run(*group[0]->work, group[0]->operation);
    count(1, 0);
    return;
  }
  std::stable_sort(group.begin(), group.end(), [](const Grouped* a, const Grouped* b) { return a->key < b->key; });
  trace::Span span("store.group_commit", trace::Kind::kClient);
  span.SetAttribute("db.system", "postgresql");
  span.SetAttribute("flovyn.group.units", std::to_string(group.size()));
  bool committing = false;
  Status s = CommitTogether(group, committing);
  if (s.ok()) {
    count(static_cast<int64_t>(group.size()), 0);
    return;
  }
  // A failed commit may have committed: running the units again could apply them twice, so
  // each caller gets the error (as a lone transaction's caller would). When the database is
  // unreachable, so is every rerun.
  if (committing || s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded) {
    span.SetError(s.message());
    for (auto* g : group) g->result = s;
    count(static_cast<int64_t>(group.size()), 0);
    return;
  }
  // A unit failed (its own refusal, a conflict, a deadlock): the group rolled back, and each
  // unit runs again in a transaction of its own, so each caller gets its own result.
  for (auto* g : group) g->result = Run(*g->work, g->operation);
  count(static_cast<int64_t>(group.size()), static_cast<int64_t>(group.size()));
}

Status Store::CommitTogether(std::vector<Grouped*>& group, bool& committing) {
  auto deadline = db::Clock::now() + pool_.options().statement_timeout;
  ASSIGN_OR_RETURN(auto conn, pool_.Acquire(std::min(deadline, db::Clock::now() + pool_.options().acquire_timeout)));
  db::Tx tx(*conn, deadline);
  std::vector<std::unique_ptr<Unit>> units;
  units.reserve(group.size());
  conn->Begin();
  Status s;
  for (size_t i = 0; s.ok() && i < group.size(); ++i) {
    units.push_back(std::make_unique<Unit>(tx, metrics_, handoffs_));
    s = (*group[i]->work)(*units.back());
  }
  // Each key is notified once for the whole group; the earliest deadline stands for all.
  std::set<std::string> wakes;
  Due due;
  if (s.ok()) {
    for (const auto& u : units) {
      wakes.insert(u->wakes().begin(), u->wakes().end());
      if (u->deadline() && (!due || *u->deadline() < *due)) due = u->deadline();
    }
    s = NotifyInTransaction(tx, wakes, due);
  }
  if (s.ok()) {
    committing = true;
    s = conn->ExecSimple("COMMIT", deadline);
    // A statement deferred until the COMMIT failed: the COMMIT never ran, nothing committed,
    // and each unit may run again alone.
    if (!s.ok() && conn->skipped()) committing = false;
  }
  if (!s.ok()) {
    if (!conn->broken()) (void)conn->ExecSimple("ROLLBACK", db::Clock::now() + std::chrono::seconds(5));
    return s;
  }
  NotifyAfterCommit(wakes, due);
  for (size_t i = 0; i < group.size(); ++i) {
    units[i]->RunAfterCommit();
    group[i]->result = Status::Ok();
  }
  return Status::Ok();
}

}  // namespace flovyn::engine
