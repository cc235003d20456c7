// Server-rendered HTML: escaping, the page frame, and small view helpers. Every dynamic value
// goes through Esc; pages work without JavaScript.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flovyn/http/message.h"

namespace flovyn::app {

using http::UrlEncode;

struct Session;

std::string Esc(std::string_view s);

struct Frame {
  std::string title;
  const Session* session = nullptr;  // null: signed out
  std::string nav;                   // the active section
  std::string error;                 // shown in a red box
  std::string notice;                // shown in a green box
  bool backend_down = false;         // the server cannot be reached
  int refresh_secs = 0;              // reload while something is running
};

std::string Layout(const Frame& f, const std::string& body);
std::string CsrfField(const std::string& token);
std::string StatusBadge(const std::string& status);
// A JSON value for display (null shows as "—").
std::string JsonBlock(const nlohmann::json& v);
std::string FormatMillis(int64_t epoch_ms);

}  // namespace flovyn::app
