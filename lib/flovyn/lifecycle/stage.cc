#include "flovyn/lifecycle/stage.h"

#include "flovyn/core/mutex.h"

namespace flovyn::lifecycle {

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kStarting:
      return "STARTING";
    case Stage::kMigrating:
      return "MIGRATING";
    case Stage::kStartingComponents:
      return "STARTING_COMPONENTS";
    case Stage::kRunning:
      return "RUNNING";
    case Stage::kDraining:
      return "DRAINING";
    case Stage::kStopped:
      return "STOPPED";
  }
  return "UNKNOWN";
}

void StageCell::Set(Stage s) {
  {
    MutexLock l(mu_);
    stage_.store(s, std::memory_order_release);
  }
  cv_.NotifyAll();
}

void StageCell::WaitAtLeast(Stage s) {
  MutexLock l(mu_);
  while (get() < s) cv_.Wait(mu_);
}

}  // namespace flovyn::lifecycle
