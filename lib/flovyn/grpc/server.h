// The gRPC listener: services registered by the program's modules, the standard health
// service, request metrics, and a bounded shutdown. Thread-safe after Start.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "flovyn/core/status.h"
#include "flovyn/grpc/health_service.h"
#include "flovyn/trace/trace.h"

namespace flovyn::metrics {
class Registry;
}

namespace flovyn::grpcsvc {

// Canonical Status -> grpc::Status.
::grpc::Status ToGrpc(const Status& s);

// The server span of one call: child of the caller's `traceparent` metadata, current on this
// thread for the handler's duration (so store spans nest under it).
class CallSpan {
 public:
  CallSpan(::grpc::ServerContext* ctx, const char* method);
  trace::Span& span() { return span_; }

 private:
  trace::Span span_;
  trace::ScopedContext scope_;
};

class Server {
 public:
  Server(std::string address, const lifecycle::StageCell& stage, health::Monitor& monitor,
         metrics::Registry* metrics);
  ~Server();

  // Before Start. The service must outlive the server.
  void AddService(::grpc::Service* service, std::string full_name);
  Status Start();
  int port() const { return port_; }
  // Stops accepting calls, waits for in-flight calls until the deadline, then cancels them.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  std::string address_;
  metrics::Registry* metrics_;
  std::vector<std::pair<::grpc::Service*, std::string>> services_;
  std::unique_ptr<HealthService> health_;
  const lifecycle::StageCell& stage_;
  health::Monitor& monitor_;
  std::unique_ptr<::grpc::Server> server_;
  int port_ = 0;
};

}  // namespace flovyn::grpcsvc
