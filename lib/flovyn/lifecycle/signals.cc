#include "flovyn/lifecycle/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace flovyn::lifecycle {
namespace {
sigset_t WatchedSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);  // internal: wakes the watcher so it can exit
  return set;
}
}  // namespace

void SignalWatcher::Block() {
  sigset_t set = WatchedSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::SignalWatcher(std::function<void(int)> on_first) {
  thread_ = std::thread([on_first = std::move(on_first)] {
    sigset_t set = WatchedSet();
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR2) return;
      if (++count == 1) {
        spdlog::warn("received {}, draining (send it again to exit at once)", strsignal(sig));
        on_first(sig);
      } else {
        spdlog::error("received {} again during the drain: exiting now", strsignal(sig));
        spdlog::default_logger()->flush();
        _exit(130);
      }
    }
  });
}

SignalWatcher::~SignalWatcher() {
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

}  // namespace flovyn::lifecycle
