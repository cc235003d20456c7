#include "flovyn/core/timers.h"

#include <pthread.h>

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
    std::lock_guard<std::mutex> l(mu_);
    id = next_++;
    auto it = due_.emplace(when, id);
    entries_.emplace(id, std::make_pair(it, std::move(fn)));
    earliest = it == due_.begin();
  }
  if (earliest) cv_.notify_one();
  return id;
}

bool Timers::Cancel(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  due_.erase(it->second.first);
  entries_.erase(it);
  return true;
}

void Timers::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Timers::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (due_.empty()) {
      cv_.wait(l);
      continue;
    }
    auto when = due_.begin()->first;
    if (Clock::now() < when) {
      cv_.wait_until(l, when);
      continue;
    }
    uint64_t id = due_.begin()->second;
    due_.erase(due_.begin());
    auto node = entries_.extract(id);
    l.unlock();
    node.mapped().second();
    l.lock();
  }
}

}  // namespace flovyn
