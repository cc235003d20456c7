#include "console_common.h"

#include "flovyn/model/status.h"

namespace flovyn::app {

const std::vector<std::string> kWorkflowStatuses = model::WorkflowStatusNames();
const std::vector<std::string> kTaskStatuses = model::TaskStatusNames();

Response Refusal(int status, const std::string& title, const std::string& message) {
  Frame f;
  f.title = title;
  return Html(status, Layout(f, "<h1>" + Esc(title) + "</h1><p>" + Esc(message) +
                                    "</p><p><a href=\"/\">Back to the console</a></p>"));
}

std::string Str(const json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

bool Terminal(const std::string& status) { return model::IsTerminalName(status); }

std::string Options(const std::vector<std::string>& values, const std::string& selected) {
  std::string h = "<option value=\"\">any status</option>";
  for (const auto& v : values) {
    h += "<option" + std::string(v == selected ? " selected" : "") + ">" + Esc(v) + "</option>";
  }
  return h;
}

}  // namespace flovyn::app
