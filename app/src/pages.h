// Server-rendered HTML: the console's pages are Mustache templates compiled into the binary
// (app/templates), so every dynamic value is escaped unless a template says otherwise. Pages
// work without JavaScript.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flovyn/http/message.h"
#include "flovyn/http/templates.h"

namespace flovyn::app {

using http::UrlEncode;

struct Session;

struct Frame {
  std::string title;
  const Session* session = nullptr;  // null: signed out
  std::string nav;                   // the active section
  std::string error;                 // shown in a red box
  std::string notice;                // shown in a green box
  bool backend_down = false;         // the server cannot be reached
  int refresh_secs = 0;              // reload while something is running
};

// The compiled-in templates, parsed and checked on first use (a template that does not parse
// aborts the start, see ConsoleModule::Start).
const http::Templates& Views();
// Template `name` (app/templates/<name>.mustache) over `view`.
std::string Render(const char* name, const nlohmann::json& view);
// The page frame around a rendered body.
std::string Layout(const Frame& f, const std::string& body);

// The CSS class of a status badge ("TIMED_OUT" -> "timed-out").
std::string BadgeClass(std::string_view status);
// {"status", "badgeClass"} for the badge partial.
nlohmann::json Badge(const std::string& status);
// {"text": pretty JSON or false} for the json partial (null shows as "—").
nlohmann::json JsonView(const nlohmann::json& v);
std::string FormatMillis(int64_t epoch_ms);

}  // namespace flovyn::app
