#include "flovyn/grpc/health_service.h"

#include <thread>

#include "flovyn/health/probes.h"

namespace flovyn::grpcsvc {

using ::grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus HealthService::Current() {
  if (stage_.get() != lifecycle::Stage::kRunning) return HealthCheckResponse::NOT_SERVING;
  health::Report r = monitor_.EvaluateBlocking();
  return health::Ready(stage_, r) ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

::grpc::Status HealthService::Check(::grpc::ServerContext*, const ::grpc::health::v1::HealthCheckRequest* req,
                                    HealthCheckResponse* res) {
  if (!req->service().empty() && services_.count(req->service()) == 0) {
    return {::grpc::StatusCode::NOT_FOUND, "unknown service"};
  }
  res->set_status(Current());
  return ::grpc::Status::OK;
}

::grpc::Status HealthService::Watch(::grpc::ServerContext* ctx, const ::grpc::health::v1::HealthCheckRequest* req,
                                    ::grpc::ServerWriter<HealthCheckResponse>* writer) {
  bool known = req->service().empty() || services_.count(req->service()) != 0;
  int last = -1;
  while (!ctx->IsCancelled()) {
    // One reading of the stage per round, so a drain that begins mid-round is first reported
    // as NOT_SERVING before the stream ends.
    lifecycle::Stage stage = stage_.get();
    HealthCheckResponse res;
    res.set_status(known ? Current() : HealthCheckResponse::SERVICE_UNKNOWN);
    if (res.status() != last) {
      if (!writer->Write(res)) break;
      last = res.status();
    }
    if (stage >= lifecycle::Stage::kDraining) {
      return {::grpc::StatusCode::UNAVAILABLE, "server is shutting down"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return ::grpc::Status::OK;
}

}  // namespace flovyn::grpcsvc
