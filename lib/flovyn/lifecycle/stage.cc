#include "flovyn/lifecycle/stage.h"

namespace flovyn::lifecycle {

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kStarting: return "STARTING";
    case Stage::kMigrating: return "MIGRATING";
    case Stage::kStartingComponents: return "STARTING_COMPONENTS";
    case Stage::kRunning: return "RUNNING";
    case Stage::kDraining: return "DRAINING";
    case Stage::kStopped: return "STOPPED";
  }
  return "UNKNOWN";
}

void StageCell::Set(Stage s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    stage_.store(s, std::memory_order_release);
  }
  cv_.notify_all();
}

void StageCell::WaitAtLeast(Stage s) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return get() >= s; });
}

}  // namespace flovyn::lifecycle
