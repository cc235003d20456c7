#include "flovyn/core/timers.h"

#include <pthread.h>

#include "flovyn/core/mutex.h"

namespace flovyn {

Timers::Timers(const char* thread_name) {
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), thread_name);
}

Timers::~Timers() { Stop(); }

uint64_t Timers::At(Clock::time_point when, std::function<void()> fn) {
  uint64_t id;
  bool earliest;
  {
    MutexLock l(mu_);
    id = next_++;
    auto it = due_.emplace(when, id);
    entries_.emplace(id, std::make_pair(it, std::move(fn)));
    earliest = it == due_.begin();
  }
  if (earliest) cv_.NotifyOne();
  return id;
}

bool Timers::Cancel(uint64_t id) {
  MutexLock l(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  due_.erase(it->second.first);
  entries_.erase(it);
  return true;
}

void Timers::Stop() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void Timers::Run() {
  UniqueLock l(mu_);
  while (!stop_) {
    if (due_.empty()) {
      cv_.Wait(mu_);
      continue;
    }
    auto when = due_.begin()->first;
    if (Clock::now() < when) {
      cv_.WaitUntil(mu_, when);
      continue;
    }
    uint64_t id = due_.begin()->second;
    due_.erase(due_.begin());
    auto node = entries_.extract(id);
    l.Unlock();
    node.mapped().second();
    l.Lock();
  }
}

}  // namespace flovyn
