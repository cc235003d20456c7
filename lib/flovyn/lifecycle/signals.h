// Turns SIGTERM/SIGINT into a drain request. The first signal calls `on_first`; a second one
// during the drain exits the process at once. Block() must run before any thread is created so
// every thread inherits the mask and only the watcher thread receives the signals.
#pragma once

#include <functional>
#include <thread>

namespace flovyn::lifecycle {

class SignalWatcher {
 public:
  static void Block();
  explicit SignalWatcher(std::function<void(int signo)> on_first);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::thread thread_;
};

}  // namespace flovyn::lifecycle
