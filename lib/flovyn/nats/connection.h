// A NATS connection through the NATS C client that connects and reconnects forever in the
// background: startup never waits for NATS, and NATS being down never stops the process.
// Thread-safe (nats.c connections are).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "flovyn/core/status.h"
#include "flovyn/health/monitor.h"

struct __natsConnection;    // NOLINT(bugprone-reserved-identifier): nats.c's names
struct __natsOptions;       // NOLINT(bugprone-reserved-identifier)
struct __natsSubscription;  // NOLINT(bugprone-reserved-identifier)

namespace flovyn::nats {

struct Options {
  std::string url = "nats://localhost:4222";
  std::string name = "flovyn";
  std::chrono::milliseconds reconnect_wait{500};
  std::chrono::milliseconds ping_interval{5000};
};

class Connection {
 public:
  explicit Connection(Options options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting in the background; fails only for invalid options.
  Status Start();
  bool connected() const;
  // "connected", "not connected (reconnecting)", ...
  std::string state() const;
  health::CheckResult Check() const;

  Status Publish(const std::string& subject, const std::string& data);
  using MessageFn = std::function<void(const std::string& subject, const std::string& data)>;
  Status Subscribe(const std::string& subject, MessageFn fn);
  // Flushes pending publishes and closes, waiting at most `timeout`.
  void Drain(std::chrono::milliseconds timeout);

  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  static void OnReconnected(__natsConnection*, void* self);
  Options options_;
  __natsOptions* opts_ = nullptr;
  __natsConnection* conn_ = nullptr;
  std::atomic<uint64_t> reconnects_{0};
  std::vector<std::unique_ptr<MessageFn>> handlers_;
  std::vector<__natsSubscription*> subs_;
};

}  // namespace flovyn::nats
