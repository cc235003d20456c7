// grpc.health.v1.Health answering SERVING exactly when the ready probe would answer 200, for
// the empty service name and for each registered Flovyn service name. Thread-safe.
#pragma once

#include <set>
#include <string>

#include "flovyn/health/monitor.h"
#include "flovyn/lifecycle/stage.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace flovyn::grpcsvc {

class HealthService final : public ::grpc::health::v1::Health::Service {
 public:
  HealthService(const lifecycle::StageCell& stage, health::Monitor& monitor, std::set<std::string> services)
      : stage_(stage), monitor_(monitor), services_(std::move(services)) {}

  ::grpc::Status Check(::grpc::ServerContext* ctx, const ::grpc::health::v1::HealthCheckRequest* req,
                       ::grpc::health::v1::HealthCheckResponse* res) override;
  ::grpc::Status Watch(::grpc::ServerContext* ctx, const ::grpc::health::v1::HealthCheckRequest* req,
                       ::grpc::ServerWriter<::grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  ::grpc::health::v1::HealthCheckResponse::ServingStatus Current();
  const lifecycle::StageCell& stage_;
  health::Monitor& monitor_;
  std::set<std::string> services_;
};

}  // namespace flovyn::grpcsvc
