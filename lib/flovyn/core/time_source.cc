#include "flovyn/core/time_source.h"

namespace flovyn {

ManualTime::time_point ManualTime::Now() const {
  MutexLock l(mu_);
  return now_;
}

uint64_t ManualTime::At(time_point when, std::function<void()> fn) {
  MutexLock l(mu_);
  uint64_t id = next_++;
  if (stopped_) return id;
  due_.emplace(when, id);
  entries_[id] = {when, std::move(fn)};
  return id;
}

bool ManualTime::Cancel(uint64_t id) {
  MutexLock l(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  auto range = due_.equal_range(it->second.first);
  for (auto d = range.first; d != range.second; ++d) {
    if (d->second == id) {
      due_.erase(d);
      break;
    }
  }
  entries_.erase(it);
  return true;
}

void ManualTime::Stop() {
  MutexLock l(mu_);
  stopped_ = true;
  due_.clear();
  entries_.clear();
}

void ManualTime::Advance(std::chrono::nanoseconds d) {
  time_point until;
  {
    MutexLock l(mu_);
    until = now_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }
  for (;;) {
    std::function<void()> fn;
    {
      MutexLock l(mu_);
      if (due_.empty() || due_.begin()->first > until) {
        now_ = until;
        return;
      }
      auto first = due_.begin();
      now_ = std::max(now_, first->first);
      auto entry = entries_.find(first->second);
      fn = std::move(entry->second.second);
      entries_.erase(entry);
      due_.erase(first);
    }
    fn();
  }
}

}  // namespace flovyn
