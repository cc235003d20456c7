// Background work every replica runs: fires due timers, times out promises, returns work whose
// lease expired. Row locks make each item happen once however many replicas run. One thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/store.h"
#include "flovyn/core/mutex.h"

namespace flovyn::engine {

class Scheduler {
 public:
  Scheduler(Store& store, std::chrono::milliseconds tick = std::chrono::milliseconds(100))
      : store_(store), tick_(tick) {}
  ~Scheduler() { Stop(); }
  void Start();
  void Stop();

 private:
  void Loop();
  Store& store_;
  std::chrono::milliseconds tick_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace flovyn::engine
