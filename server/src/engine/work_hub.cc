#include "engine/work_hub.h"

#include <algorithm>
#include <thread>

#include "flovyn/core/mutex.h"

namespace flovyn::engine {

std::string WorkKey(const std::string& tenant_id, const std::string& queue, WorkKind kind) {
  return (kind == WorkKind::kWorkflow ? "w|" : "t|") + tenant_id + "|" + queue;
}

std::string AnyKindKey(const std::string& tenant_id, const std::string& queue) {
  return "*|" + tenant_id + "|" + queue;
}

namespace {
constexpr char kTagSeparator = '\x1f';  // never in a tenant id or queue name (no control characters)
}  // namespace

std::string TaggedKey(const std::string& key, const std::string& tag) { return key + kTagSeparator + tag; }

namespace {
bool IsStreamKey(const std::string& key) { return !key.empty() && key[0] == '*'; }
}  // namespace

WorkHub::WorkHub(std::chrono::milliseconds sweep, TimeSource* time)
    : sweep_(sweep),
      own_time_(time == nullptr ? std::make_unique<SystemTime>("flovyn-workhub") : nullptr),
      time_(time == nullptr ? *own_time_ : *time) {
  MutexLock l(mu_);
  next_sweep_ = time_.Now() + sweep_;
  tick_at_ = next_sweep_;
  tick_timer_ = time_.At(tick_at_, [this] { Tick(); });
}

WorkHub::~WorkHub() { time_.Stop(); }

WorkHub::Slot& WorkHub::SlotFor(const std::string& key) {
  auto [it, inserted] = slots_.try_emplace(key);
  if (inserted) it->second.version = news_;
  it->second.touched = time_.Now();
  return it->second;
}

uint64_t WorkHub::Observe(const std::string& key) {
  MutexLock l(mu_);
  return SlotFor(key).version;
}

void WorkHub::FoundEmpty(const std::string& key, uint64_t seen, const std::string& scope) {
  MutexLock l(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end() || it->second.version != seen || it->second.empty.size() >= kEmptyScopes) return;
  it->second.empty.insert(scope);
}

bool WorkHub::KnownEmpty(const std::string& key, uint64_t seen, const std::string& scope) const {
  MutexLock l(mu_);
  auto it = slots_.find(key);
  return it != slots_.end() && it->second.version == seen && it->second.empty.count(scope) > 0;
}

WorkHub::Parked WorkHub::Park(const std::string& key, uint64_t seen, Clock::time_point deadline, WakeFn fn,
                              std::string tag) {
  MutexLock l(mu_);
  if (draining_) return {0, Wake::kDrain};
  Slot& slot = SlotFor(key);
  if (slot.version != seen) return {0, Wake::kNews};
  if (deadline <= time_.Now()) return {0, Wake::kDeadline};
  uint64_t ticket = next_ticket_++;
  slot.waiters.push_back(ticket);
  auto d = deadlines_.emplace(deadline, ticket);
  Waiter w{key, std::prev(slot.waiters.end()), d, std::move(fn), std::nullopt};
  if (!tag.empty()) w.in_tagged = slot.tagged.emplace(std::move(tag), ticket);
  waiters_.emplace(ticket, std::move(w));
  if (deadline < tick_at_ && time_.Cancel(tick_timer_)) {
    // Otherwise the tick is running now and will see this deadline when it takes the lock.
    tick_at_ = deadline;
    tick_timer_ = time_.At(deadline, [this] { Tick(); });
  }
  return {ticket, Wake::kNews};
}

bool WorkHub::Cancel(uint64_t ticket) {
  MutexLock l(mu_);
  auto it = waiters_.find(ticket);
  if (it == waiters_.end()) return false;
  Unlink(it->second);
  waiters_.erase(it);
  return true;
}

void WorkHub::Take(uint64_t ticket, Wake why, Ready& out) {
  auto it = waiters_.find(ticket);
  if (it == waiters_.end()) return;
  Unlink(it->second);
  out.emplace_back(std::move(it->second.fn), why);
  waiters_.erase(it);
}

void WorkHub::WakeOne(Slot& slot, Wake why, Ready& out, const std::string& tag) {
  if (slot.waiters.empty()) return;
  if (!tag.empty()) {
    auto t = slot.tagged.find(tag);
    if (t != slot.tagged.end()) return Take(t->second, why, out);
  }
  Take(slot.waiters.front(), why, out);
}

void WorkHub::Unlink(const Waiter& w) {
  auto s = slots_.find(w.key);
  if (s != slots_.end()) {
    s->second.waiters.erase(w.in_slot);
    if (w.in_tagged) s->second.tagged.erase(*w.in_tagged);
  }
  deadlines_.erase(w.in_deadlines);
}

void WorkHub::WakeAll(Slot& slot, Wake why, Ready& out) {
  while (!slot.waiters.empty()) Take(slot.waiters.front(), why, out);
}

void WorkHub::NotifyLocked(const std::string& key, Ready& out, const std::string& tag) {
  auto it = slots_.find(key);
  if (it == slots_.end()) return;  // nobody here waits or is about to: nothing to remember
  Slot& slot = it->second;
  slot.version = ++news_;
  slot.touched = time_.Now();
  slot.empty.clear();
  // One unit of news wakes one poller; a poller that claims work passes the news on, so a
  // burst reaches as many pollers as it has work for, without a herd. Streams all hear it.
  if (IsStreamKey(key))
    WakeAll(slot, Wake::kNews, out);
  else
    WakeOne(slot, Wake::kNews, out, tag);
}

void WorkHub::Notify(const std::string& key) {
  Ready ready;
  {
    MutexLock l(mu_);
    if (key == "*") {  // everything may have changed (e.g. notifications were missed)
      std::vector<std::string> all;
      all.reserve(slots_.size());
      for (const auto& [k, s] : slots_) all.push_back(k);
      for (const auto& k : all) NotifyLocked(k, ready);
    } else {
      size_t sep = key.find(kTagSeparator);
      std::string base = sep == std::string::npos ? key : key.substr(0, sep);
      NotifyLocked(base, ready, sep == std::string::npos ? std::string() : key.substr(sep + 1));
      if (base.size() > 2 && base[1] == '|' && !IsStreamKey(base)) NotifyLocked("*" + base.substr(1), ready);
    }
  }
  Run(ready);
}

void WorkHub::Drain() {
  Ready ready;
  {
    MutexLock l(mu_);
    draining_ = true;
    // Long-polls first (each is a worker waiting for an answer), then streams.
    Ready streams;
    for (auto& [key, slot] : slots_) {
      WakeAll(slot, Wake::kDrain, IsStreamKey(key) ? streams : ready);
    }
    while (!waiters_.empty()) Take(waiters_.begin()->first, Wake::kDrain, ready);
    for (auto& s : streams) ready.push_back(std::move(s));
  }
  // Thousands of waiters each finish a call: share them among the cores so every one is
  // released within the drain's first second.
  size_t workers = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), ready.size() / 500 + 1);
  if (workers <= 1) return Run(ready);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&ready, w, workers] {  // each takes every workers-th, in order
      for (size_t i = w; i < ready.size(); i += workers) ready[i].first(ready[i].second);
    });
  }
  for (auto& t : threads) t.join();
}

void WorkHub::Tick() {
  Ready ready;
  {
    MutexLock l(mu_);
    auto now = time_.Now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      Take(deadlines_.begin()->second, Wake::kDeadline, ready);
    }
    if (now >= next_sweep_) {
      next_sweep_ = now + sweep_;
      for (auto it = slots_.begin(); it != slots_.end();) {
        Slot& slot = it->second;
        slot.empty.clear();  // work may have become due without news
        if (!slot.waiters.empty()) {
          if (!IsStreamKey(it->first)) WakeOne(slot, Wake::kSweep, ready);
          ++it;
        } else if (now - slot.touched > 2 * sweep_) {
          it = slots_.erase(it);  // no waiter and no recent news: forget the key
        } else {
          ++it;
        }
      }
    }
    tick_at_ = next_sweep_;
    if (!deadlines_.empty()) tick_at_ = std::min(tick_at_, deadlines_.begin()->first);
    tick_timer_ = time_.At(tick_at_, [this] { Tick(); });
  }
  Run(ready);
}

void WorkHub::Run(Ready& ready) {
  for (auto& [fn, why] : ready) fn(why);
}

bool WorkHub::draining() const {
  MutexLock l(mu_);
  return draining_;
}

int WorkHub::waiting() const {
  MutexLock l(mu_);
  return static_cast<int>(waiters_.size());
}

size_t WorkHub::keys() const {
  MutexLock l(mu_);
  return slots_.size();
}

}  // namespace flovyn::engine
