// Plumbing for server-rendered pages: cookies, urlencoded forms, query values, and HTML and
// redirect responses that carry strict security headers (a same-origin content policy, no
// framing, no caching). Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "flovyn/core/status.h"
#include "flovyn/http/message.h"

namespace flovyn::http {

// The value of cookie `name` in the request's Cookie headers; "" when absent.
std::string CookieValue(const Request& req, std::string_view name);
// application/x-www-form-urlencoded fields; INVALID_ARGUMENT for another content type or a
// field longer than `max_field` bytes.
StatusOr<std::map<std::string, std::string>> FormOf(const Request& req, size_t max_field);
// A form field without surrounding white space; "" when absent.
std::string Field(const std::map<std::string, std::string>& form, const char* name);
// A query parameter; "" when absent.
std::string QueryValue(const Request& req, const char* name);

Response WithPageSecurityHeaders(Response r);
Response HtmlPage(int status, std::string body);
// 303 See Other.
Response SeeOther(const std::string& location);

}  // namespace flovyn::http
