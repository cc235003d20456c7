// Server-rendered HTML from compiled-in Mustache templates (kainjow's header, from Debian).
// Every {{value}} is HTML-escaped; {{{value}}} is for markup another template produced and
// nothing else. Every template is available to every other as a partial ({{> name}}).
// Templates are checked when the set is built, so a page that does not parse stops the start,
// not a visitor. Immutable once built; thread-safe.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "flovyn/core/status.h"

namespace flovyn::http {

class Templates {
 public:
  // `sources` maps a template's name ("layout") to its text. INVALID_ARGUMENT naming the template
  // and the parser's complaint when one does not parse.
  static StatusOr<Templates> Build(std::map<std::string, std::string> sources);

  // Renders template `name` over `view`: objects are sections and scopes, arrays repeat, null
  // false and "" hide a section, numbers print as JSON writes them. An unknown name is a
  // programming error and aborts.
  std::string Render(const std::string& name, const nlohmann::json& view) const;

  bool Has(const std::string& name) const { return sources_.count(name) != 0; }

 private:
  explicit Templates(std::map<std::string, std::string> sources) : sources_(std::move(sources)) {}
  std::map<std::string, std::string> sources_;
};

}  // namespace flovyn::http
