#include "flovyn/grpc/server.h"

#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::grpcsvc {
namespace {

const char* GrpcCodeName(::grpc::StatusCode c) {
  static const char* names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? names[i] : "UNKNOWN";
}

// Counts calls and measures latency by method and status code.
class MetricsInterceptor final : public ::grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(::grpc::experimental::ServerRpcInfo* info, metrics::Family<metrics::Counter>* calls,
                     metrics::HistogramFamily* latency)
      : method_(info->method()), calls_(calls), latency_(latency), start_(std::chrono::steady_clock::now()) {}

  void Intercept(::grpc::experimental::InterceptorBatchMethods* m) override {
    using H = ::grpc::experimental::InterceptionHookPoints;
    if (m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      code_ = GrpcCodeName(m->GetSendStatus().error_code());
    }
    if (m->QueryInterceptionHookPoint(H::POST_RECV_CLOSE) || m->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      if (!recorded_ && code_ != nullptr) {
        recorded_ = true;
        calls_->With({method_, code_})->Inc();
        latency_->With({method_})
            ->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
      }
    }
    m->Proceed();
  }

 private:
  std::string method_;
  metrics::Family<metrics::Counter>* calls_;
  metrics::HistogramFamily* latency_;
  std::chrono::steady_clock::time_point start_;
  const char* code_ = nullptr;
  bool recorded_ = false;
};

class MetricsInterceptorFactory final : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(metrics::Registry& r)
      : calls_(&r.CounterOf(metrics::catalogue::kGrpcRequests)),
        latency_(&r.HistogramOf(metrics::catalogue::kGrpcRequestDuration)) {}
  ::grpc::experimental::Interceptor* CreateServerInterceptor(::grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, calls_, latency_);
  }

 private:
  metrics::Family<metrics::Counter>* calls_;
  metrics::HistogramFamily* latency_;
};

// A request that does not parse (proto3 rejects invalid UTF-8 in string fields) is the
// caller's fault: grpc++ reports it as INTERNAL with an empty message, which no Flovyn handler
// ever returns, so it is answered as INVALID_ARGUMENT instead.
class UnparsableRequestInterceptor final : public ::grpc::experimental::Interceptor {
 public:
  void Intercept(::grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(::grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      ::grpc::Status st = m->GetSendStatus();
      if (st.error_code() == ::grpc::StatusCode::INTERNAL && st.error_message().empty()) {
        m->ModifySendStatus({::grpc::StatusCode::INVALID_ARGUMENT,
                             "the request could not be parsed (is every string field valid UTF-8?)"});
      }
    }
    m->Proceed();
  }
};

class UnparsableRequestInterceptorFactory final : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ::grpc::experimental::Interceptor* CreateServerInterceptor(::grpc::experimental::ServerRpcInfo*) override {
    return new UnparsableRequestInterceptor();
  }
};

}  // namespace

namespace {
std::optional<trace::SpanContext> CallerContext(::grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("traceparent");
  if (it == md.end()) return std::nullopt;
  return trace::SpanContext::Parse(std::string_view(it->second.data(), it->second.size()));
}
}  // namespace

CallSpan::CallSpan(::grpc::ServerContext* ctx, const char* method)
    : span_(std::string("flovyn.v1/") + method, trace::Kind::kServer, CallerContext(ctx), false),
      scope_(span_.context()) {}

::grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return ::grpc::Status::OK;
  Status shown = ForClient(s);
  return {static_cast<::grpc::StatusCode>(GrpcCodeFor(shown.code())), shown.message()};
}

Server::Server(std::string address, const lifecycle::StageCell& stage, health::Monitor& monitor,
               metrics::Registry* metrics)
    : address_(std::move(address)), metrics_(metrics), stage_(stage), monitor_(monitor) {}

Server::~Server() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void Server::AddService(::grpc::Service* service, std::string full_name) {
  services_.emplace_back(service, std::move(full_name));
}

Status Server::Start() {
  std::set<std::string> names;
  for (auto& [svc, name] : services_) names.insert(name);
  names.insert("grpc.health.v1.Health");
  health_ = std::make_unique<HealthService>(stage_, monitor_, names);

  ::grpc::ServerBuilder b;
  b.AddListeningPort(address_, ::grpc::InsecureServerCredentials(), &port_);
  b.RegisterService(health_.get());
  for (auto& [svc, name] : services_) b.RegisterService(svc);
  b.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  std::vector<std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<UnparsableRequestInterceptorFactory>());
  if (metrics_ != nullptr) interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(*metrics_));
  b.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = b.BuildAndStart();
  if (!server_ || port_ == 0) return Unavailable("cannot listen for gRPC on " + address_);
  return Status::Ok();
}

void Server::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (server_) {
    server_->Shutdown(deadline);
    server_->Wait();
  }
}

}  // namespace flovyn::grpcsvc
