// What the console's pages share: the cookie names, the statuses they filter by, and the
// small helpers every page file uses. Internal to app/src; pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "console_module.h"
#include "flovyn/http/web.h"
#include "pages.h"

namespace flovyn::app {

using http::Field;
using http::Request;
using http::Response;
using nlohmann::json;

inline constexpr const char* kSessionCookie = "flovyn_session";
inline constexpr const char* kVisitorCookie = "flovyn_visitor";
inline constexpr size_t kMaxField = 10000;  // bytes of one form field

extern const std::vector<std::string> kWorkflowStatuses;
extern const std::vector<std::string> kTaskStatuses;

inline Response Html(int status, std::string body) { return http::HtmlPage(status, std::move(body)); }
inline Response Redirect(const std::string& location) { return http::SeeOther(location); }
inline std::string Query(const Request& req, const char* name) { return http::QueryValue(req, name); }
inline int HttpFor(const Status& s) { return HttpStatusFor(s.code()); }

// A plain page for a refused request: a short message, never internals.
Response Refusal(int status, const std::string& title, const std::string& message);
// A string member of a JSON object; "" when absent or not a string.
std::string Str(const json& j, const char* k);
// The strings of a JSON array joined with ", " ("" for anything else).
std::string Joined(const json& a);
bool Terminal(const std::string& status);
// The status_options partial's view: every status, `selected` marked.
json StatusOptions(const std::vector<std::string>& values, const std::string& selected);
// The message template's view: a heading, a line and a link back.
json Message(const std::string& title, const std::string& message = "", const std::string& back_href = "",
             const std::string& back_label = "Back");
// "" as false: a next-page link, when there is one.
json NextPage(const json& list, std::string base, const std::vector<std::pair<const char*, std::string>>& filters);

// Renders the page, or the frame with the "server unreachable" banner (503) or the error.
template <typename F>
Response WithBackend(Frame frame, const Status& s, F body) {
  if (s.ok()) return Html(200, Layout(frame, body()));
  if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded) {
    frame.backend_down = true;
    return Html(503, Layout(frame, Render("message", Message(frame.title))));
  }
  frame.error = s.message();
  return Html(HttpFor(s), Layout(frame, Render("message", Message(frame.title))));
}

// One request's session, cookies and CSRF state.
struct ConsoleModule::Visit {
  std::optional<Session> session;
  std::string csrf;  // the token forms on this page must carry
  std::vector<std::string> set_cookies;
  std::map<std::string, std::string> form;  // POST fields, CSRF already checked
  flovyn::app::Frame Frame(std::string title, std::string nav) const {
    flovyn::app::Frame f;
    f.title = std::move(title);
    f.nav = std::move(nav);
    f.session = session ? &*session : nullptr;
    return f;
  }
};

}  // namespace flovyn::app
