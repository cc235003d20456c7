#include "flovyn/grpc/call_interceptor.h"

#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::grpcsvc {
namespace {

const char* GrpcCodeName(::grpc::StatusCode c) {
  static const char* names[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? names[i] : "UNKNOWN";
}

// One interceptor per call, for the methods the server implements ("known"; any other path the
// network invents is labelled "other"):
// - a request that does not parse (proto3 rejects invalid UTF-8 in string fields) is the
//   caller's fault: grpc++ reports it as INTERNAL (synchronous handlers) or UNIMPLEMENTED
//   (callback handlers) with an empty message, which no Flovyn handler ever returns for a method
//   it implements, so it is answered as INVALID_ARGUMENT instead;
// - calls are counted and timed by method and status code (when metrics are on).
class CallInterceptor final : public ::grpc::experimental::Interceptor {
 public:
  CallInterceptor(bool known, const char* method, metrics::Family<metrics::Counter>* calls,
                  metrics::HistogramFamily* latency, std::atomic<int64_t>& live)
      : known_(known),
        method_(known ? method : "other"),
        calls_(calls),
        latency_(latency),
        live_(live),
        start_(std::chrono::steady_clock::now()) {
    live_.fetch_add(1, std::memory_order_relaxed);
  }
  ~CallInterceptor() override { live_.fetch_sub(1, std::memory_order_release); }

  void Intercept(::grpc::experimental::InterceptorBatchMethods* m) override {
    using H = ::grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      ::grpc::Status st = m->GetSendStatus();
      if (known_ && st.error_message().empty() &&
          (st.error_code() == ::grpc::StatusCode::INTERNAL || st.error_code() == ::grpc::StatusCode::UNIMPLEMENTED)) {
        st = {::grpc::StatusCode::INVALID_ARGUMENT,
              "the request could not be parsed (is every string field valid UTF-8?)"};
        m->ModifySendStatus(st);
      }
      code_ = GrpcCodeName(st.error_code());
    }
    if (calls_ != nullptr && !recorded_ && code_ != nullptr &&
        (m->QueryInterceptionHookPoint(H::POST_RECV_CLOSE) || m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS))) {
      recorded_ = true;
      calls_->With({method_, code_})->Inc();
      latency_->With({method_})->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    m->Proceed();
  }

 private:
  const bool known_;
  const std::string method_;
  metrics::Family<metrics::Counter>* calls_;
  metrics::HistogramFamily* latency_;
  std::atomic<int64_t>& live_;
  std::chrono::steady_clock::time_point start_;
  const char* code_ = nullptr;
  bool recorded_ = false;
};

class CallInterceptorFactory final : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(metrics::Registry* r, std::set<std::string> methods, std::atomic<int64_t>& live)
      : calls_(r != nullptr ? &r->CounterOf(metrics::catalogue::kGrpcRequests) : nullptr),
        latency_(r != nullptr ? &r->HistogramOf(metrics::catalogue::kGrpcRequestDuration) : nullptr),
        methods_(std::move(methods)),
        live_(live) {}
  ::grpc::experimental::Interceptor* CreateServerInterceptor(::grpc::experimental::ServerRpcInfo* info) override {
    const char* m = info->method() != nullptr ? info->method() : "";
    return new CallInterceptor(methods_.count(m) != 0, m, calls_, latency_, live_);
  }

 private:
  metrics::Family<metrics::Counter>* calls_;
  metrics::HistogramFamily* latency_;
  std::set<std::string> methods_;
  std::atomic<int64_t>& live_;
};

}  // namespace

std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface> NewCallInterceptorFactory(
    metrics::Registry* metrics, std::set<std::string> methods, std::atomic<int64_t>& live) {
  return std::make_unique<CallInterceptorFactory>(metrics, std::move(methods), live);
}

}  // namespace flovyn::grpcsvc
