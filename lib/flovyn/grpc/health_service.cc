#include "flovyn/grpc/health_service.h"

#include <mutex>
#include <optional>

#include "flovyn/core/mutex.h"
#include "flovyn/grpc/serial_writer.h"
#include "flovyn/grpc/server.h"
#include "flovyn/health/probes.h"

namespace flovyn::grpcsvc {

using ::grpc::health::v1::HealthCheckResponse;

namespace {
HealthCheckResponse::ServingStatus StatusOf(const lifecycle::StageCell& stage, const health::Report& r) {
  return health::Ready(stage, r) ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}
constexpr auto kWatchInterval = std::chrono::milliseconds(500);
}  // namespace

// One Watch: evaluates every half second, writes when the status changes, and ends with
// UNAVAILABLE once the server drains (after reporting NOT_SERVING).
class HealthService::Watcher final : public SerialWriter<HealthCheckResponse> {
 public:
  Watcher(HealthService& svc, bool known) : svc_(svc), known_(known) {
    if (svc_.watches_.fetch_add(1) >= svc_.max_watches_) {
      RecursiveMutexLock l(mu_);
      FinishLocked({::grpc::StatusCode::RESOURCE_EXHAUSTED,
                    "too many health watches at once (limit " + std::to_string(svc_.max_watches_) + ")"});
      return;
    }
    Round();
  }

  void OnWriteDone(bool ok) override {
    RecursiveMutexLock l(mu_);
    if (WriteDoneLocked(ok)) ScheduleLocked();
  }

  void OnCancel() override {
    RecursiveMutexLock l(mu_);
    cancelled_ = true;
    if (timer_ != 0 && svc_.timers_.Cancel(timer_)) timer_ = 0;
    if (timer_ == 0 && !evaluating_) FinishLocked(::grpc::Status::OK);
  }

  void OnDone() override {
    { RecursiveMutexLock l(mu_); }
    svc_.watches_.fetch_sub(1);
    delete this;
  }

 private:
  void Round() {
    {
      RecursiveMutexLock l(mu_);
      timer_ = 0;
      if (cancelled_) return FinishLocked(::grpc::Status::OK);
      evaluating_ = true;
    }
    // One reading of the stage per round, so a drain that begins mid-round is first reported
    // as NOT_SERVING before the stream ends.
    lifecycle::Stage stage = svc_.stage_.get();
    svc_.monitor_.Evaluate([this, stage](const health::Report& r) {
      RecursiveMutexLock l(mu_);
      evaluating_ = false;
      if (cancelled_) return FinishLocked(::grpc::Status::OK);
      int status =
          !known_ ? HealthCheckResponse::SERVICE_UNKNOWN
                  : (stage != lifecycle::Stage::kRunning ? HealthCheckResponse::NOT_SERVING : StatusOf(svc_.stage_, r));
      bool ending = stage >= lifecycle::Stage::kDraining;
      if (status != last_) {
        last_ = status;
        HealthCheckResponse out;
        out.set_status(static_cast<HealthCheckResponse::ServingStatus>(status));
        WriteLocked(std::move(out));
        if (ending) FinishLocked({::grpc::StatusCode::UNAVAILABLE, "server is shutting down"});
        return;
      }
      if (ending) return FinishLocked({::grpc::StatusCode::UNAVAILABLE, "server is shutting down"});
      ScheduleLocked();
    });
  }

  void ScheduleLocked() REQUIRES(mu_) {
    if (finished()) return;
    timer_ = svc_.timers_.At(Clock::now() + kWatchInterval, [this] { Round(); });
  }

  using Clock = std::chrono::steady_clock;
  HealthService& svc_;
  const bool known_;
  int last_ GUARDED_BY(mu_) = -1;
  uint64_t timer_ GUARDED_BY(mu_) = 0;
  bool cancelled_ GUARDED_BY(mu_) = false;
  bool evaluating_ GUARDED_BY(mu_) = false;
};

HealthService::~HealthService() { Stop(); }

void HealthService::Stop() { timers_.Stop(); }

::grpc::ServerUnaryReactor* HealthService::Check(::grpc::CallbackServerContext* ctx,
                                                 const ::grpc::health::v1::HealthCheckRequest* req,
                                                 HealthCheckResponse* res) {
  auto* reactor = ctx->DefaultReactor();
  NoteHandledCall(ctx);
  if (!req->service().empty() && services_.count(req->service()) == 0) {
    reactor->Finish({::grpc::StatusCode::NOT_FOUND, "unknown service"});
    return reactor;
  }
  if (stage_.get() != lifecycle::Stage::kRunning) {
    res->set_status(HealthCheckResponse::NOT_SERVING);
    reactor->Finish(::grpc::Status::OK);
    return reactor;
  }
  monitor_.Evaluate([this, reactor, res](const health::Report& r) {
    res->set_status(StatusOf(stage_, r));
    reactor->Finish(::grpc::Status::OK);
  });
  return reactor;
}

::grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    ::grpc::CallbackServerContext*, const ::grpc::health::v1::HealthCheckRequest* req) {
  bool known = req->service().empty() || services_.count(req->service()) != 0;
  return new Watcher(*this, known);
}

}  // namespace flovyn::grpcsvc
