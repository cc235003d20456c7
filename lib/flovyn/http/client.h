// A small blocking HTTP/1.1 client for calls between Flovyn's own services (the console's
// backend check and API calls, the server's JWKS and API-key lookups). Every call has a hard
// deadline covering resolve, connect, write and read. Plain http:// only: in-cluster traffic.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "flovyn/core/status.h"

namespace flovyn::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};
  size_t max_response_bytes = size_t{8} * 1024 * 1024;
};

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
};

// UNAVAILABLE when the peer cannot be reached or answers too late (the message says which);
// INVALID_ARGUMENT for a URL this client cannot call.
StatusOr<ClientResponse> Fetch(const ClientRequest& request);

struct Url {
  std::string host, port, target;
};
StatusOr<Url> ParseHttpUrl(const std::string& url);

}  // namespace flovyn::http
