// The small HTTP client the programs use between themselves: URL handling and hard deadlines.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

#include "flovyn/http/client.h"

namespace flovyn::http {
namespace {

TEST(HttpClientTest, ParsesHttpUrlsAndRefusesWhatItCannotCall) {
  auto u = ParseHttpUrl("http://flovyn-app:3000/.well-known/jwks.json");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "flovyn-app");
  EXPECT_EQ(u->port, "3000");
  EXPECT_EQ(u->target, "/.well-known/jwks.json");
  auto bare = ParseHttpUrl("http://server");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, "80");
  EXPECT_EQ(bare->target, "/");
  auto v6 = ParseHttpUrl("http://[::1]:8000/x?y=1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8000");
  EXPECT_EQ(v6->target, "/x?y=1");
  EXPECT_EQ(ParseHttpUrl("https://server").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseHttpUrl("ftp://server").ok());
  EXPECT_FALSE(ParseHttpUrl("http://user:pw@server/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://server:80a/").ok());
}

TEST(HttpClientTest, APeerThatNeverAnswersIsCutAtTheDeadline) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 8), 0);  // accepted by the kernel, never read or answered
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
  req.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = Fetch(req);
  auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no answer within 300 ms"), std::string::npos) << r.status().message();
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(HttpClientTest, AClosedPortIsUnavailableAtOnce) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // the port is now closed
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
  auto r = Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("connect failed"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace flovyn::http
