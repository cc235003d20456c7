// grpc.health.v1.Health answering SERVING exactly when the ready probe would answer 200, for
// the empty service name and for each registered Flovyn service name. Callback API: a Check
// holds no thread while the monitor evaluates, and a Watch is re-evaluated on a timer (at most
// `max_watches` at once). Thread-safe.
#pragma once

#include <atomic>
#include <set>
#include <string>

#include "flovyn/core/timers.h"
#include "flovyn/health/monitor.h"
#include "flovyn/lifecycle/stage.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace flovyn::grpcsvc {

class HealthService final : public ::grpc::health::v1::Health::CallbackService {
 public:
  HealthService(const lifecycle::StageCell& stage, health::Monitor& monitor, std::set<std::string> services,
                int max_watches = 100)
      : stage_(stage), monitor_(monitor), services_(std::move(services)), max_watches_(max_watches) {}
  ~HealthService() override;

  ::grpc::ServerUnaryReactor* Check(::grpc::CallbackServerContext* ctx,
                                    const ::grpc::health::v1::HealthCheckRequest* req,
                                    ::grpc::health::v1::HealthCheckResponse* res) override;
  ::grpc::ServerWriteReactor<::grpc::health::v1::HealthCheckResponse>* Watch(
      ::grpc::CallbackServerContext* ctx, const ::grpc::health::v1::HealthCheckRequest* req) override;

  // Ends every Watch (UNAVAILABLE) and stops the timer; before the server's shutdown.
  void Stop();

 private:
  class Watcher;
  const lifecycle::StageCell& stage_;
  health::Monitor& monitor_;
  std::set<std::string> services_;
  const int max_watches_;
  std::atomic<int> watches_{0};
  Timers timers_{"flovyn-health"};
};

}  // namespace flovyn::grpcsvc
