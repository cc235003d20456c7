// An OTLP/gRPC trace collector for tests: a real gRPC server that keeps what it receives.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace flovyn::testing {

namespace otlp = opentelemetry::proto;

inline std::string Hex(const std::string& bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

struct ReceivedSpan {
  std::string trace_id, span_id, parent_id, name, service;
  std::map<std::string, std::string> attributes;
};

class TestCollector final : public otlp::collector::trace::v1::TraceService::Service {
 public:
  TestCollector() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~TestCollector() override { server_->Shutdown(std::chrono::system_clock::now()); }
  int port() const { return port_; }
  grpc::Status Export(grpc::ServerContext*, const otlp::collector::trace::v1::ExportTraceServiceRequest* req,
                      otlp::collector::trace::v1::ExportTraceServiceResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& rs : req->resource_spans()) {
      std::string service;
      for (const auto& a : rs.resource().attributes()) {
        if (a.key() == "service.name") service = a.value().string_value();
      }
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& s : ss.spans()) {
          ReceivedSpan r{Hex(s.trace_id()), Hex(s.span_id()), Hex(s.parent_span_id()), s.name(), service, {}};
          for (const auto& a : s.attributes()) r.attributes[a.key()] = a.value().string_value();
          spans_.push_back(r);
        }
      }
    }
    return grpc::Status::OK;
  }
  std::vector<ReceivedSpan> spans() {
    std::lock_guard<std::mutex> l(mu_);
    return spans_;
  }
  const ReceivedSpan* Find(const std::function<bool(const ReceivedSpan&)>& pred) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& s : spans_) {
      if (pred(s)) return &s;
    }
    return nullptr;
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::vector<ReceivedSpan> spans_;
};

}  // namespace flovyn::testing
