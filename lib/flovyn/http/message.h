// HTTP request and response values handed between the server and its handlers.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flovyn/core/status.h"

namespace flovyn::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
// The first value of header `name` (compared case-insensitively), or "".
std::string_view FindHeader(const HeaderList& headers, std::string_view name);

struct Request {
  std::string method;  // upper case
  std::string target;  // as received
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> path_params;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string body;
  std::string remote_address;

  // First value of a header (name compared case-insensitively), or "".
  std::string_view Header(std::string_view name) const;
};

// A response body produced over time (Server-Sent Events). After the head, the server calls
// Next() on its handler threads, first at once and then every `interval`, and writes what it
// returns ("" for nothing new) until Next() sets `end`, the client goes away or the server
// drains; then the connection closes. Next() must return quickly: it holds a handler thread.
// The stream is destroyed once the response has ended.
class BodyStream {
 public:
  explicit BodyStream(std::chrono::milliseconds interval) : interval_(interval) {}
  virtual ~BodyStream() = default;
  BodyStream(const BodyStream&) = delete;
  BodyStream& operator=(const BodyStream&) = delete;
  virtual std::string Next(bool& end) = 0;
  std::chrono::milliseconds interval() const { return interval_; }

 private:
  std::chrono::milliseconds interval_;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodyStream> stream;  // set: `body` is ignored and the body streams (no length)

  Response& With(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// {"error":{"code":"...","message":"..."}} with the status mapped from the code.
Response ErrorResponse(const Status& status);
Response ErrorResponse(int http_status, std::string_view code, std::string_view message);
Response JsonResponse(int status, std::string body);

// Called exactly once per request, from any thread.
using Respond = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Respond)>;

// Adapts a synchronous handler.
Handler Sync(std::function<Response(const Request&)> f);

std::string UrlDecode(std::string_view s, bool plus_is_space);
// Percent-encodes everything but unreserved characters (RFC 3986): a path segment or query value.
std::string UrlEncode(std::string_view s);
std::map<std::string, std::string> ParseQuery(std::string_view q);
// A Transfer-Encoding value that is exactly "chunked" (case-insensitive, spaces around allowed).
bool IsChunkedCoding(std::string_view transfer_encoding);

}  // namespace flovyn::http
