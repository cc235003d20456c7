// grpc.health.v1.Health follows readiness, so Kubernetes native gRPC probes work.
#include <signal.h>

#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "harness.h"

namespace flovyn::testing {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using namespace std::chrono_literals;

::grpc::Status Check(Health::Stub& stub, const std::string& service, HealthCheckResponse* res) {
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 7s);
  HealthCheckRequest req;
  req.set_service(service);
  return stub.Check(&ctx, req, res);
}

TEST(GrpcHealthTest, ServingWhenReadyNotServingAfterSigterm) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"SHUTDOWN__DELAY_SECS", "3"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto channel =
      ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);

  HealthCheckResponse res;
  ASSERT_TRUE(Check(*stub, "", &res).ok());
  EXPECT_EQ(res.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check(*stub, "grpc.health.v1.Health", &res).ok());
  EXPECT_EQ(res.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(*stub, "no.such.Service", &res).error_code(), ::grpc::StatusCode::NOT_FOUND);

  server.process().Signal(SIGTERM);
  EXPECT_TRUE(Eventually([&] {
    return Check(*stub, "", &res).ok() && res.status() == HealthCheckResponse::NOT_SERVING;
  })) << "NOT_SERVING from the first moment of the drain";
  EXPECT_EQ(server.process().Wait(15s), 0) << server.process().Log();
}

TEST(GrpcHealthTest, NotServingWhileTheDatabaseIsDown) {
  Postgres pg;
  ServerProcess server({.database_url = pg.CreateDatabase()});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto stub = Health::NewStub(
      ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials()));
  pg.Stop();
  HealthCheckResponse res;
  EXPECT_TRUE(Eventually([&] {
    return Check(*stub, "", &res).ok() && res.status() == HealthCheckResponse::NOT_SERVING;
  })) << "NOT_SERVING once the database check fails";
  EXPECT_EQ(HttpGet(server.http_port(), "/_/health/ready").status, 503);
  pg.Start();
  for (int i = 0; i < 100 && res.status() != HealthCheckResponse::SERVING; ++i) {
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(Check(*stub, "", &res).ok());
  }
  EXPECT_EQ(res.status(), HealthCheckResponse::SERVING);
}

TEST(GrpcHealthTest, WatchStreamsChangesAndEndsOnDrain) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"SHUTDOWN__DELAY_SECS", "2"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto stub = Health::NewStub(
      ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()), ::grpc::InsecureChannelCredentials()));
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  HealthCheckRequest req;
  auto reader = stub->Watch(&ctx, req);
  HealthCheckResponse res;
  ASSERT_TRUE(reader->Read(&res));
  EXPECT_EQ(res.status(), HealthCheckResponse::SERVING);
  server.process().Signal(SIGTERM);
  ASSERT_TRUE(reader->Read(&res));
  EXPECT_EQ(res.status(), HealthCheckResponse::NOT_SERVING);
  while (reader->Read(&res)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server.process().Wait(15s), 0);
}

}  // namespace
}  // namespace flovyn::testing
