// HTTP request and response values handed between the server and its handlers.
#pragma once

#include <functional>
#include <map>
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

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

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
