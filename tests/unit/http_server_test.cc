#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "flovyn/http/server.h"
#include "harness.h"

namespace flovyn::http {
namespace {

using namespace std::chrono_literals;
using flovyn::testing::HttpGet;
using flovyn::testing::HttpRequest;
using flovyn::testing::HttpResult;

// Sends raw bytes on a fresh connection and returns everything read until close or timeout.
std::string RawExchange(int port, const std::string& bytes, int read_ms = 2000) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "CONNECT FAILED";
  timeval tv{read_ms / 1000, (read_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!::write(fd, bytes.data(), bytes.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("POST", "/api/echo", Sync([](const Request& r) { return JsonResponse(200, r.body); }));
    router_.Add("GET", "/api/slow", Sync([](const Request&) {
                  std::this_thread::sleep_for(500ms);
                  return JsonResponse(200, "{}");
                }));
    router_.Add("GET", "/probe", Sync([](const Request&) { return JsonResponse(200, "{}"); }),
                {.before_running = true, .run_inline = true, .summary = ""});
    router_.Add("DELETE", "/api/thing", Sync([](const Request&) {
                  Response r;
                  r.status = 204;
                  return r;
                }));
    router_.Add("GET", "/api/framed", Sync([](const Request&) {
                  // Framing is the server's: a handler's own framing headers are not sent.
                  Response r = JsonResponse(200, R"({"ok":true})");
                  r.With("Content-Length", "999").With("Connection", "upgrade").With("X-Kept", "yes");
                  return r;
                }));
    ServerOptions o;
    o.bind_address = "127.0.0.1";
    o.max_body_bytes = 1024;
    o.max_header_bytes = 2048;
    server_ = std::make_unique<Server>(o, router_, [this] { return open_.load(); });
    ASSERT_TRUE(server_->Start().ok());
  }
  Router router_;
  std::atomic<bool> open_{true};
  std::unique_ptr<Server> server_;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::string req = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  std::string last = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n[12]";
  std::string out = RawExchange(server_->port(), req + req + last);
  size_t count = 0;
  for (size_t p = out.find("HTTP/1.1 200"); p != std::string::npos; p = out.find("HTTP/1.1 200", p + 1)) ++count;
  EXPECT_EQ(count, 3u) << out;
  EXPECT_NE(out.find("[12]"), std::string::npos);
}

// RFC 9112 framing of what the server writes: HEAD has the length of the body it leaves out, 204
// has neither length nor body, HTTP/1.0 keeps the connection only when asked and says so, and a
// handler cannot frame the message itself.
TEST_F(HttpServerTest, ResponsesAreFramedByTheServerForHeadNoContentAndHttp10) {
  std::string head = RawExchange(server_->port(), "HEAD /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 2\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "no body after the head: " << head;

  std::string none = RawExchange(server_->port(), "DELETE /api/thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(none.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << none;
  EXPECT_EQ(none.find("Content-Length"), std::string::npos) << none;
  EXPECT_EQ(none.substr(none.size() - 4), "\r\n\r\n") << none;

  std::string kept = RawExchange(server_->port(),
                                 "GET /probe HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                 "GET /probe HTTP/1.0\r\n\r\n");
  EXPECT_EQ(kept.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << kept;
  size_t second = kept.find("HTTP/1.0 200 OK", 1);
  ASSERT_NE(second, std::string::npos) << "the kept connection served the second request: " << kept;
  EXPECT_NE(kept.substr(0, second).find("Connection: keep-alive\r\n"), std::string::npos) << kept;
  EXPECT_NE(kept.substr(second).find("Connection: close\r\n"), std::string::npos) << "then closed: " << kept;

  std::string framed = RawExchange(server_->port(), "GET /api/framed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(framed.find("Content-Length: 11\r\n"), std::string::npos) << framed;
  EXPECT_EQ(framed.find("999"), std::string::npos) << framed;
  EXPECT_EQ(framed.find("upgrade"), std::string::npos) << framed;
  EXPECT_NE(framed.find("X-Kept: yes\r\n"), std::string::npos) << framed;
  EXPECT_EQ(framed.substr(framed.size() - 11), R"({"ok":true})") << framed;
}

TEST_F(HttpServerTest, OversizedBodyIs413WithJsonError) {
  auto r = HttpRequest("POST", server_->port(), "/api/echo", std::string(4096, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("\"code\":\"PAYLOAD_TOO_LARGE\""), std::string::npos) << r.body;
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  auto r = HttpRequest("GET", server_->port(), "/probe", "", {{"X-Big", std::string(4096, 'y')}});
  EXPECT_EQ(r.status, 431);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  std::string out = RawExchange(server_->port(), "GARBAGE\r\n\r\n");
  EXPECT_NE(out.find("HTTP/1.1 400"), std::string::npos) << out;
  EXPECT_NE(out.find("BAD_REQUEST"), std::string::npos) << out;
}

TEST_F(HttpServerTest, UnknownRouteAndWrongMethodAreJsonErrors) {
  auto r = HttpGet(server_->port(), "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("NOT_FOUND"), std::string::npos);
  auto m = HttpRequest("DELETE", server_->port(), "/api/echo");
  EXPECT_EQ(m.status, 405);
}

TEST_F(HttpServerTest, ApiRoutesAnswer503WithRetryAfterUntilOpenWhileProbesAnswer) {
  open_ = false;
  auto r = HttpRequest("POST", server_->port(), "/api/echo", "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(HttpGet(server_->port(), "/probe").status, 200);
  open_ = true;
  EXPECT_EQ(HttpRequest("POST", server_->port(), "/api/echo", "{}").status, 200);
}

TEST_F(HttpServerTest, SlowClientIsNotServedForever) {
  ServerOptions o;
  o.bind_address = "127.0.0.1";
  o.read_timeout = std::chrono::seconds(1);
  Server s(o, router_, [] { return true; });
  ASSERT_TRUE(s.Start().ok());
  auto t0 = std::chrono::steady_clock::now();
  std::string out = RawExchange(s.port(), "GET /probe HTTP/1.1\r\nHost: x\r\n", 5000);  // never finishes headers
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(out.find("200"), std::string::npos);
}

TEST_F(HttpServerTest, DrainLetsInFlightRequestsFinishAndRefusesNewConnections) {
  HttpResult slow;
  std::thread t([&] { slow = HttpGet(server_->port(), "/api/slow"); });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server_->in_flight(), 1);
  server_->StopAccepting();
  EXPECT_TRUE(server_->WaitIdle(std::chrono::steady_clock::now() + 5s));
  t.join();
  EXPECT_EQ(slow.status, 200);
  std::this_thread::sleep_for(50ms);
  auto refused = HttpGet(server_->port(), "/probe", 1s);
  EXPECT_EQ(refused.status, 0) << refused.body;
}

// A connection kept open across requests.
class Connection {
 public:
  explicit Connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Connection() { ::close(fd_); }
  bool connected() const { return connected_; }
  // Sends a request and reads one whole response (its body is "{}").
  std::string Exchange(const std::string& request) {
    (void)!::write(fd_, request.data(), request.size());
    std::string out;
    char buf[4096];
    while (out.find("\r\n\r\n{}") == std::string::npos) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True when the server has closed its side (a read returns end of stream).
  bool ClosedByServer() {
    char c;
    return ::read(fd_, &c, 1) == 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// The drain's first step asks every open connection to close while connections are also ending
// on their own. A session whose last owner was the drain's own list used to be destroyed while
// that list's lock was held, and unregistering took the same lock: the drain hung for good
// (seen in CI as a server stuck in DRAINING). Many rounds of connections ending during
// StopAccepting, each bounded.
TEST(HttpDrainTest, StopAcceptingWhileConnectionsEndOnTheirOwnNeverHangs) {
  Router router;
  router.Add("GET", "/api/x", Sync([](const Request&) { return JsonResponse(200, "{}"); }));
  const std::string get = "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int round = 0; round < 30; ++round) {
    ServerOptions o;
    o.bind_address = "127.0.0.1";
    o.io_threads = 2;
    auto server = std::make_unique<Server>(o, router, [] { return true; });
    ASSERT_TRUE(server->Start().ok());
    std::vector<std::unique_ptr<Connection>> open;
    for (int c = 0; c < 64; ++c) {
      open.push_back(std::make_unique<Connection>(server->port()));
      ASSERT_NE(open.back()->Exchange(get).find("HTTP/1.1 200"), std::string::npos);
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread closer([&open] { open.clear(); });  // the clients leave while the drain begins
    std::thread drain([&server, done] {
      server->StopAccepting();
      server->Stop(std::chrono::milliseconds(100));
      *done = true;
    });
    closer.join();
    for (int i = 0; i < 200 && !*done; ++i) std::this_thread::sleep_for(10ms);
    if (!*done) {
      ADD_FAILURE() << "round " << round << ": StopAccepting and Stop did not finish within 2 s";
      drain.detach();
      (void)server.release();  // still in use by the stuck thread
      return;
    }
    drain.join();
  }
}

TEST(HttpDrainTest, ConnectionsCloseAfterTheirNextResponseOnceTheDrainManagerSaysSoWhileNewOnesAreServed) {
  Router router;
  router.Add("GET", "/api/x", Sync([](const Request&) { return JsonResponse(200, "{}"); }));
  lifecycle::DrainManager drain;
  ServerOptions o;
  o.bind_address = "127.0.0.1";
  o.drain = &drain;
  Server server(o, router, [] { return true; });
  ASSERT_TRUE(server.Start().ok());
  const std::string get = "GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n";

  Connection kept(server.port());
  ASSERT_TRUE(kept.connected());
  std::string first = kept.Exchange(get);
  ASSERT_NE(first.find("HTTP/1.1 200"), std::string::npos) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos) << "kept alive before the drain: " << first;

  drain.BeginClosingConnections();
  std::string second = kept.Exchange(get);
  ASSERT_NE(second.find("HTTP/1.1 200"), std::string::npos) << "the request in hand is still served: " << second;
  EXPECT_NE(second.find("Connection: close"), std::string::npos) << second;
  EXPECT_TRUE(kept.ClosedByServer());

  Connection fresh(server.port());
  ASSERT_TRUE(fresh.connected()) << "the listener still accepts during the shutdown delay";
  std::string third = fresh.Exchange(get);
  EXPECT_NE(third.find("HTTP/1.1 200"), std::string::npos) << third;
  EXPECT_NE(third.find("Connection: close"), std::string::npos) << third;
  server.Stop();
}

}  // namespace
}  // namespace flovyn::http
