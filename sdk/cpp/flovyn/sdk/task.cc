#include "flovyn/sdk/client.h"

namespace flovyn::sdk {

bool TaskContext::Heartbeat() {
  if (cancelled_) return false;
  v1::TaskHeartbeatResponse out;
  grpc::Status s = client_.HeartbeatTask(worker_id_, task_, &out);
  // ABORTED: the lease went to another worker; other failures are transient.
  if (out.cancel_requested() || s.error_code() == grpc::StatusCode::ABORTED) cancelled_ = true;
  return !cancelled_;
}

bool TaskContext::Progress(const Json& progress) {
  if (cancelled_) return false;
  grpc::Status s = client_.ReportProgress(worker_id_, task_, progress.dump());
  if (s.error_code() == grpc::StatusCode::ABORTED) cancelled_ = true;
  return !cancelled_;
}

}  // namespace flovyn::sdk
