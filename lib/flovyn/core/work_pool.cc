#include "flovyn/core/work_pool.h"

#include <pthread.h>

#include <algorithm>

#include "flovyn/core/mutex.h"

namespace flovyn {

WorkPool::WorkPool(std::string name, int threads, size_t max_queued)
    : name_(std::move(name)), thread_count_(threads), max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
    pthread_setname_np(threads_.back().native_handle(), name_.substr(0, 15).c_str());
  }
}

WorkPool::~WorkPool() { Stop(); }

bool WorkPool::TrySubmit(std::function<void()> job) {
  {
    MutexLock l(mu_);
    if (stopping_) return false;
    // Jobs waiting beyond the idle threads are the backlog the bound applies to.
    int idle = thread_count_ - busy_;
    if (queue_.size() >= max_queued_ + static_cast<size_t>(std::max(idle, 0))) return false;
    queue_.push_back(std::move(job));
  }
  cv_.NotifyOne();
  return true;
}

void WorkPool::Stop() {
  {
    MutexLock l(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.NotifyAll();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

int WorkPool::busy() const {
  MutexLock l(mu_);
  return busy_;
}

void WorkPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      MutexLock l(mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(mu_);
      if (queue_.empty()) return;  // stopping and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    job();
    MutexLock l(mu_);
    --busy_;
  }
}

}  // namespace flovyn
