#include "flovyn/http/client.h"

#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace flovyn::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

StatusOr<Url> ParseHttpUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status(StatusCode::kInvalidArgument, "https URLs are not supported here; use the service's http URL");
  }
  if (url.rfind(kScheme, 0) != 0) return Status(StatusCode::kInvalidArgument, "URL must start with http://");
  std::string rest = url.substr(kScheme.size());
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (u.target[0] == '?') u.target = "/" + u.target;
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument, "URL needs a host (and no credentials)");
  }
  if (authority[0] == '[') {  // [::1]:8000
    auto close = authority.find(']');
    if (close == std::string::npos) return Status(StatusCode::kInvalidArgument, "malformed IPv6 host");
    u.host = authority.substr(1, close - 1);
    u.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : "80";
  } else {
    auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  }
  if (u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status(StatusCode::kInvalidArgument, "malformed port in URL");
  }
  return u;
}

StatusOr<ClientResponse> Fetch(const ClientRequest& request) {
  auto url = ParseHttpUrl(request.url);
  if (!url.ok()) return url.status();

  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(request.max_response_bytes);
  std::optional<Status> failure;
  bool done = false;
  const char* phase = "resolve";

  req.method_string(request.method);
  req.target(url->target);
  req.version(11);
  req.set(bhttp::field::host, url->host + ":" + url->port);
  req.set(bhttp::field::connection, "close");
  req.set(bhttp::field::user_agent, "flovyn");
  for (const auto& [k, v] : request.headers) req.set(k, v);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    req.body() = request.body;
    req.prepare_payload();
  }

  auto fail = [&](const beast::error_code& ec) {
    failure = Status(StatusCode::kUnavailable, std::string(phase) + " failed: " + ec.message());
  };
  resolver.async_resolve(url->host, url->port, [&](beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec) return fail(ec);
    phase = "connect";
    stream.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return fail(ec2);
      phase = "write";
      bhttp::async_write(stream, req, [&](beast::error_code ec3, size_t) {
        if (ec3) return fail(ec3);
        phase = "read";
        bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec4, size_t) {
          if (ec4) return fail(ec4);
          done = true;
        });
      });
    });
  });
  ioc.run_for(request.timeout);
  if (!done && !failure) {
    return Status(StatusCode::kUnavailable,
                  std::string("no answer within ") + std::to_string(request.timeout.count()) + " ms (" + phase + ")");
  }
  if (failure) return *failure;
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  const auto& res = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.content_type = std::string(res[bhttp::field::content_type]);
  out.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  return out;
}

}  // namespace flovyn::http
