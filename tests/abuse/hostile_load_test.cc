// Hostile load against a real flovyn-server (and the console for label floods): each test
// reproduces an attack from the network at a bounded scale and asserts the bound the server
// keeps. bench/abuse/run drives the same attacks at full scale and prints the figures.
#include <sys/resource.h>
#include <sys/socket.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "app_harness.h"
#include "engine_harness.h"
#include "flovyn/v1/flovyn.grpc.pb.h"
#include "hostile.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

std::string Limits(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) return line;
  }
  return "";
}

void RaiseOwnDescriptorLimit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

TEST(HostileGrpcTest, RapidResetLeavesTheServerAliveWithFewThreadsAndAnotherClientServedAtOnce) {
  // The shedding threshold sits low enough that the flood crosses it on any machine: a busy one
  // sends fewer pairs in the time and its server's memory grows slower, so the flood also goes
  // on until 200k pairs were sent and the server closed the flooding connection (up to 20 s).
  EngineServer s({.env = {{"GRPC__SHED_ABOVE_MB", "96"}}});
  pid_t pid = s.server().process().pid();
  auto r = RapidReset(s.server().grpc_port(), pid, 5s, 200000, true);
  std::printf(
      "rapid reset: %ld HEADERS+RST_STREAM pairs on %d connection(s); peak %ld threads, %.0f MiB "
      "(from %.0f); next call %.1f ms\n",
      r.pairs, r.connections, r.peak.threads, r.peak.rss_mb, r.baseline_mb, r.recovery_ms);
  ASSERT_GE(r.pairs, 200000) << "the flood ran";
  EXPECT_TRUE(s.server().process().running()) << s.server().process().Log();
  EXPECT_LT(r.peak.threads, 200);
  // grpc 1.51's transport cannot refuse the flood (CVE-2023-44487); above GRPC__SHED_ABOVE_MB
  // the server closes the connection sending the most, which bounds the memory.
  EXPECT_LT(r.peak.rss_mb, 300);
  EXPECT_NE(s.server().process().Log().find("closed the connection sending the most"), std::string::npos)
      << "peak " << r.peak.rss_mb << " MiB";
  EXPECT_GE(r.recovery_ms, 0) << "a normal call after the flood failed";
  EXPECT_LT(r.recovery_ms, 1000);
  EXPECT_EQ(s.Rest("GET", "/_/health/ready", "", "").status, 200);
}

TEST(HostileGrpcTest, HalfOpenStreamsStayBoundedAndTheirMemoryReturnsWhenTheConnectionsClose) {
  EngineServer s;
  RaiseOwnDescriptorLimit();
  pid_t pid = s.server().process().pid();
  // 100k streams asked for, 64 per connection: the default limits (300 connections of 64
  // streams) hold 19,200 of them and refuse the rest.
  auto r = HalfOpen(s.server().grpc_port(), pid, 100000, 64, 3s);
  std::printf(
      "half-open: %ld streams on %d connections; RSS %.0f -> %.0f MiB held -> %.0f MiB after; "
      "max %ld threads\n",
      r.streams, r.connections, r.baseline_mb, r.held_mb, r.after_mb, r.max_threads);
  EXPECT_GE(r.connections, 300) << "the limit was reached";
  EXPECT_LT(r.held_mb, 300);
  EXPECT_LT(r.after_mb - r.baseline_mb, 50);
  EXPECT_LT(r.max_threads, 200);
  EXPECT_GE(HealthCallMs(s.server().grpc_port(), 1000ms), 0);
}

TEST(HostileGrpcTest, StreamsBeyondTheConnectionsLimitAreRefused) {
  EngineServer s({.env = {{"GRPC__MAX_CONCURRENT_STREAMS", "10"}}});
  // The 11th stream on one connection is refused (RST_STREAM REFUSED_STREAM), so a connection
  // holds at most 10: open 50 and the server keeps serving others.
  H2Conn c(s.server().grpc_port());
  for (int i = 0; i < 50; ++i) c.OpenStream("/flovyn.v1.WorkflowDispatch/StartWorkflow");
  ASSERT_TRUE(c.Flush());
  std::this_thread::sleep_for(300ms);
  c.Drain();
  EXPECT_GE(HealthCallMs(s.server().grpc_port(), 1000ms), 0);
}

TEST(HostileGrpcTest, IdleAndSilentConnectionsAreClosedAfterTheirConfiguredTime) {
  EngineServer s({.env = {{"GRPC__MAX_CONNECTION_IDLE_MS", "1000"}, {"GRPC__HANDSHAKE_TIMEOUT_MS", "1000"}}});
  {
    H2Conn idle(s.server().grpc_port());  // preface and settings, then nothing
    ASSERT_TRUE(idle.ok());
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(idle.WaitClosed(6s)) << "an idle unauthenticated HTTP/2 connection stayed open";
    std::printf("idle connection closed after %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  {
    // TCP only, never the HTTP/2 preface.
    int fd = ConnectLoopback(s.server().grpc_port());
    ASSERT_GE(fd, 0);
    timeval tv{6, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    }
    EXPECT_EQ(n, 0) << "a connection that never sent the preface stayed open";
    ::close(fd);
  }
}

TEST(HostileGrpcTest, ConnectionsBeyondTheLimitsAreRefusedPolitelyAndServedAgainAfter) {
  EngineServer s({.env = {{"GRPC__MAX_CONNECTIONS", "5"}, {"HTTP__MAX_CONNECTIONS", "20"}}});
  std::vector<std::unique_ptr<H2Conn>> held;
  for (int i = 0; i < 5; ++i) held.push_back(std::make_unique<H2Conn>(s.server().grpc_port()));
  std::this_thread::sleep_for(300ms);
  H2Conn extra(s.server().grpc_port());
  EXPECT_TRUE(extra.WaitClosed(2s)) << "the sixth gRPC connection was kept";
  held.clear();
  std::this_thread::sleep_for(1500ms);  // the listener notices the closed ones
  EXPECT_GE(HealthCallMs(s.server().grpc_port(), 2000ms), 0);

  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectLoopback(s.http_port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);
  auto refused = HttpGet(s.http_port(), "/_/health/live");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("HTTP__MAX_CONNECTIONS"), std::string::npos) << refused.body;
  for (int fd : fds) ::close(fd);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(HttpGet(s.http_port(), "/_/health/live").status, 200);
}

TEST(HostileGrpcTest, DescriptorLimitIsRaisedToTheHardLimitAtStartAndLogged) {
  ServerProcess p({.database_url = Postgres::Shared().CreateDatabase(),
                   .launcher = {"/usr/bin/prlimit", "--nofile=256:4096", "--"}});
  ASSERT_TRUE(p.WaitReady()) << p.process().Log();
  std::string line = Limits(p.process().pid());
  EXPECT_NE(line.find("4096                 4096"), std::string::npos) << line;
  EXPECT_NE(p.process().Log().find("open file limit: 4096 (was 256, hard limit 4096)"), std::string::npos);
}

TEST(HostileGrpcTest, DescriptorExhaustionDoesNotSpinAndGrpcServesAgainAfterRelease) {
  EngineServer s;
  RaiseOwnDescriptorLimit();
  pid_t pid = s.server().process().pid();
  rlimit low{1024, 1024};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);
  auto r = ExhaustDescriptors(s.http_port(), s.server().grpc_port(), pid, 1300, 3s);
  std::printf(
      "descriptors: %d connections held; server CPU while full %.2f cores; gRPC back %.0f ms after "
      "release; live %d\n",
      r.held, r.cpu_while_full, r.grpc_back_ms, r.live_status_after);
  EXPECT_NE(s.server().process().Log().find("cannot accept"), std::string::npos) << "descriptors ran out";
  EXPECT_LT(r.cpu_while_full, 0.3) << "the accept loops spun";
  EXPECT_GE(r.grpc_back_ms, 0) << "gRPC never accepted again";
  EXPECT_LT(r.grpc_back_ms, 10000);
  EXPECT_EQ(r.live_status_after, 200);
}

TEST(HostileGrpcTest, LivenessReportsAListenerThatNoLongerCompletesCallsOnNewConnections) {
  // With room for one connection, held by a stranger, a fresh connection is closed at once:
  // the self-check cannot complete a call, as with a listener that stopped accepting.
  EngineServer s({.env = {{"GRPC__MAX_CONNECTIONS", "1"}}});
  ASSERT_EQ(HttpGet(s.http_port(), "/_/health/live").status, 200);
  std::this_thread::sleep_for(2500ms);  // past the cached result
  H2Conn hog(s.server().grpc_port());
  ASSERT_TRUE(hog.ok());
  std::this_thread::sleep_for(300ms);
  auto live = HttpGet(s.http_port(), "/_/health/live");
  EXPECT_EQ(live.status, 503) << live.body;
  EXPECT_NE(live.body.find("grpcListener"), std::string::npos) << live.body;
  EXPECT_EQ(HttpGet(s.http_port(), "/_/health/ready").status, 200) << "readiness is about dependencies";
}

TEST(HostileGrpcTest, ThousandsOfWaitingPollsAndStreamsHoldNoThreadsAndAreReleasedOnSigterm) {
  EngineServer s({.tenants = {"acme", "beta"}});
  RaiseOwnDescriptorLimit();
  WaitersSpec spec{.client = s.ClientFor("acme"),
                   .other = s.ClientFor("beta"),
                   .database_url = s.database_url(),
                   .polls = 1000,
                   .streams = 1000,
                   .per_channel = 60,
                   .window = 4000ms};
  auto r = ManyWaiters(s.server().process().pid(), spec);
  std::printf(
      "waiters: %d polls + %d streams (%d refused); %ld threads, %.0f MiB; %.1f tx/s idle -> %.1f tx/s "
      "waiting; other tenant max %.1f ms; SIGTERM released %d in %.0f ms\n",
      r.polls, r.streams, r.refused, r.held.threads, r.held.rss_mb, r.baseline_tx_per_s, r.waiting_tx_per_s,
      r.other_tenant_max_ms, r.released, r.release_ms);
  EXPECT_EQ(r.refused, 0);
  EXPECT_LT(r.held.threads, 100);
  EXPECT_LT(r.held.rss_mb, 250);
  // Waiting adds at most the scheduler's own rate (one re-check per polled queue per sweep).
  EXPECT_LE(r.waiting_tx_per_s - r.baseline_tx_per_s, std::max(r.baseline_tx_per_s, 5.0));
  EXPECT_LT(r.other_tenant_max_ms, 100);
  EXPECT_EQ(r.released, r.polls + r.streams);
  EXPECT_GE(r.release_ms, 0);
  EXPECT_LT(r.release_ms, 1000);
}

TEST(HostileGrpcTest, ATenantBeyondItsLongPollAndStreamCapsGetsResourceExhaustedNamingTheSetting) {
  EngineServer s({.env = {{"ENGINE__MAX_POLLS_PER_TENANT", "3"}, {"ENGINE__MAX_STREAMS_PER_TENANT", "2"}}});
  sdk::Client client(s.ClientFor("acme"));
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  std::string worker;
  ASSERT_TRUE(client.RegisterWorker(reg, &worker).ok());
  std::vector<std::thread> holders;
  for (int i = 0; i < 3; ++i) {
    holders.emplace_back([&] {
      v1::PollTaskRequest req;
      req.set_worker_id(worker);
      req.set_queue("q");
      req.set_timeout_ms(3000);
      v1::PollTaskResponse res;
      (void)client.PollTask(req, &res);
    });
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> stream_ctx;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WorkNotification>>> streams;
  for (int i = 0; i < 2; ++i) {
    stream_ctx.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(client.Subscribe(stream_ctx.back().get(), "q"));
  }
  std::this_thread::sleep_for(700ms);
  v1::PollTaskRequest req;
  req.set_worker_id(worker);
  req.set_queue("q");
  req.set_timeout_ms(1000);
  v1::PollTaskResponse res;
  auto st = client.PollTask(req, &res);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("ENGINE__MAX_POLLS_PER_TENANT"), std::string::npos) << st.error_message();
  grpc::ClientContext ctx;
  auto third = client.Subscribe(&ctx, "q");
  v1::WorkNotification n;
  EXPECT_FALSE(third->Read(&n));
  auto fst = third->Finish();
  EXPECT_EQ(fst.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << fst.error_message();
  EXPECT_NE(fst.error_message().find("ENGINE__MAX_STREAMS_PER_TENANT"), std::string::npos);
  // Another tenant is not affected, and the slots come back when the calls end.
  for (auto& t : holders) t.join();
  auto again = client.PollTask(req, &res);
  EXPECT_TRUE(again.ok()) << again.error_message();
  for (auto& c : stream_ctx) c->TryCancel();
  for (auto& r : streams) (void)r->Finish();
}

}  // namespace
TEST(HostileGrpcTest, AConnectionThatIgnoresTheGoawayDoesNotHoldTheDrain) {
  // grpc++ finishes shutting down only when every client connection has closed; a client that
  // keeps its idle connection open after the GOAWAY must not keep the server from exiting.
  EngineServer s({.env = {{"SHUTDOWN__TIMEOUT_SECS", "20"}}});
  H2Conn idle(s.server().grpc_port());
  ASSERT_TRUE(idle.Flush());
  EXPECT_GE(HealthCallMs(s.server().grpc_port(), 1000ms), 0) << "the server is serving";
  idle.Drain();
  auto t0 = std::chrono::steady_clock::now();
  s.server().process().Signal(SIGTERM);
  EXPECT_EQ(s.server().process().Wait(15s), 0) << s.server().process().Log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the drain waited for a connection with no call on it";
}

}  // namespace flovyn::testing
