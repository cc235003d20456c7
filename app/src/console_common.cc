#include "console_common.h"

#include "flovyn/model/status.h"

namespace flovyn::app {

const std::vector<std::string> kWorkflowStatuses = model::WorkflowStatusNames();
const std::vector<std::string> kTaskStatuses = model::TaskStatusNames();

Response Refusal(int status, const std::string& title, const std::string& message) {
  Frame f;
  f.title = title;
  return Html(status, Layout(f, Render("message", Message(title, message, "/", "Back to the console"))));
}

std::string Str(const json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

bool Terminal(const std::string& status) { return model::IsTerminalName(status); }

json StatusOptions(const std::vector<std::string>& values, const std::string& selected) {
  json options = json::array();
  for (const auto& v : values) options.push_back({{"name", v}, {"selected", v == selected}});
  return options;
}

json Message(const std::string& title, const std::string& message, const std::string& back_href,
             const std::string& back_label) {
  json back = back_href.empty() ? json(false) : json{{"href", back_href}, {"label", back_label}};
  return {{"title", title}, {"message", message}, {"back", back}};
}

std::string Joined(const json& a) {
  std::string out;
  if (!a.is_array()) return out;
  for (const auto& x : a) {
    if (x.is_string()) out += (out.empty() ? "" : ", ") + x.get<std::string>();
  }
  return out;
}

json NextPage(const json& list, std::string base, const std::vector<std::pair<const char*, std::string>>& filters) {
  if (!list.contains("nextCursor") || !list["nextCursor"].is_string()) return false;
  base += "?cursor=" + UrlEncode(list["nextCursor"].get<std::string>());
  for (const auto& [name, value] : filters) {
    if (!value.empty()) base += std::string("&") + name + "=" + UrlEncode(value);
  }
  return base;
}

}  // namespace flovyn::app
