// Live history as Server-Sent Events against a real flovyn-server: new events arrive as they are
// appended, the stream ends after the terminal event, Last-Event-ID resumes, the number of open
// streams is bounded, and a drain ends open streams instead of waiting for them.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "engine_harness.h"
#include "hostile.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// One GET .../events?follow=true over a raw connection, read as it arrives.
class Follow {
 public:
  Follow(EngineServer& s, const std::string& id, const std::string& last_event_id = "") {
    fd_ = ConnectLoopback(s.http_port());
    std::string req = "GET /api/tenants/acme/workflows/" + id +
                      "/events?follow=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TenantKey("acme") + "\r\n";
    if (!last_event_id.empty()) req += "Last-Event-ID: " + last_event_id + "\r\n";
    req += "\r\n";
    EXPECT_EQ(::send(fd_, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  }
  ~Follow() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Reads until `text` has arrived (true) or the time is up or the server closed (false).
  bool ReadUntil(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (got_.find(text) == std::string::npos) {
      if (!ReadSome(until)) return got_.find(text) != std::string::npos;
    }
    return true;
  }
  // True once the server has closed the connection.
  bool Closed(std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (ReadSome(until)) {
    }
    return eof_;
  }
  const std::string& got() const { return got_; }

 private:
  bool ReadSome(std::chrono::steady_clock::time_point until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    got_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool eof_ = false;
  std::string got_;
};

std::string Start(EngineServer& s) {
  auto r = s.Rest("POST", "/api/tenants/acme/workflows", R"({"kind":"k","input":{}})");
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["id"];
}

TEST(EventStreamTest, NewEventsArriveAsAppendedAndTheStreamEndsAfterTheTerminalEvent) {
  EngineServer s({.env = {{"ENGINE__EVENT_STREAM_POLL_MS", "50"}}});
  std::string id = Start(s);
  Follow f(s, id);
  ASSERT_TRUE(f.ReadUntil("event: WORKFLOW_STARTED")) << f.got();
  EXPECT_NE(f.got().find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(f.got().find("Content-Type: text/event-stream"), std::string::npos) << f.got();
  EXPECT_NE(f.got().find("id: 1\n"), std::string::npos) << f.got();
  // Appended after the stream opened: it arrives without a new request.
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"go","payload":7})").status,
            202);
  ASSERT_TRUE(f.ReadUntil("event: SIGNAL_RECEIVED")) << f.got();
  auto data = f.got().find("data: ", f.got().find("event: SIGNAL_RECEIVED"));
  json event = json::parse(f.got().substr(data + 6, f.got().find('\n', data) - data - 6));
  EXPECT_EQ(event["payload"]["payload"], 7) << event.dump();
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/cancel").status, 202);
  ASSERT_TRUE(f.ReadUntil("event: WORKFLOW_CANCELLED")) << f.got();
  EXPECT_TRUE(f.Closed()) << "the stream ends after the terminal event";
}

TEST(EventStreamTest, LastEventIdResumesAfterThatSequence) {
  EngineServer s({.env = {{"ENGINE__EVENT_STREAM_POLL_MS", "50"}}});
  std::string id = Start(s);
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"a"})").status, 202);
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"b"})").status, 202);
  Follow f(s, id, "2");
  ASSERT_TRUE(f.ReadUntil("id: 3\n")) << f.got();
  EXPECT_EQ(f.got().find("id: 1\n"), std::string::npos) << f.got();
  EXPECT_EQ(f.got().find("id: 2\n"), std::string::npos) << f.got();
  Follow bad(s, id, "x1");
  ASSERT_TRUE(bad.ReadUntil("\r\n\r\n"));
  EXPECT_NE(bad.got().find("HTTP/1.1 400"), std::string::npos) << bad.got();
  auto unknown = s.Rest("GET", "/api/tenants/acme/workflows/00000000-0000-4000-8000-000000000000/events?follow=true");
  EXPECT_EQ(unknown.status, 404);
}

TEST(EventStreamTest, OpenStreamsAreBoundedAndAClosedOneFreesItsSlot) {
  EngineServer s({.env = {{"ENGINE__MAX_EVENT_STREAMS", "2"}, {"ENGINE__EVENT_STREAM_POLL_MS", "50"}}});
  std::string id = Start(s);
  auto a = std::make_unique<Follow>(s, id);
  Follow b(s, id);
  ASSERT_TRUE(a->ReadUntil("event: WORKFLOW_STARTED"));
  ASSERT_TRUE(b.ReadUntil("event: WORKFLOW_STARTED"));
  auto over = s.Rest("GET", "/api/tenants/acme/workflows/" + id + "/events?follow=true");
  EXPECT_EQ(over.status, 503);
  EXPECT_NE(over.body.find("engine.max_event_streams"), std::string::npos) << over.body;
  // The plain history still answers.
  EXPECT_EQ(s.Rest("GET", "/api/tenants/acme/workflows/" + id + "/events").status, 200);
  a.reset();  // the client goes away; the server notices at its next write and frees the slot
  ASSERT_EQ(s.Rest("POST", "/api/tenants/acme/workflows/" + id + "/signals", R"({"name":"poke"})").status, 202);
  ASSERT_TRUE(Eventually([&] {
    Follow c(s, id);
    return c.ReadUntil("event: WORKFLOW_STARTED", 2s);
  })) << "a slot came free";
}

TEST(EventStreamTest, ADrainEndsOpenStreamsAndTheServerExitsPromptly) {
  EngineServer s({.env = {{"ENGINE__EVENT_STREAM_POLL_MS", "50"}}});
  std::string id = Start(s);
  Follow f(s, id);
  ASSERT_TRUE(f.ReadUntil("event: WORKFLOW_STARTED"));
  auto t0 = std::chrono::steady_clock::now();
  s.server().process().Signal(SIGTERM);
  EXPECT_TRUE(f.Closed(10s)) << "the drain closed the stream";
  EXPECT_EQ(s.server().process().Wait(20s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s) << "the stream did not hold the drain";
}

}  // namespace
}  // namespace flovyn::testing
