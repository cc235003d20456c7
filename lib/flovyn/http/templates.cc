#include "flovyn/http/templates.h"

#include <cstdio>
#include <cstdlib>

#include <kainjow/mustache.hpp>

namespace flovyn::http {

namespace mustache = kainjow::mustache;

namespace {

mustache::data ToData(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object: {
      mustache::data d{mustache::data::type::object};
      for (const auto& [k, x] : v.items()) d.set(k, ToData(x));
      return d;
    }
    case nlohmann::json::value_t::array: {
      mustache::data d{mustache::data::type::list};
      for (const auto& x : v) d.push_back(ToData(x));
      return d;
    }
    case nlohmann::json::value_t::string: {
      // "" hides a section as JavaScript's falsiness would; as a value it prints nothing either way.
      const auto& s = v.get_ref<const std::string&>();
      return s.empty() ? mustache::data{false} : mustache::data{s};
    }
    case nlohmann::json::value_t::boolean:
      return mustache::data{v.get<bool>()};
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return mustache::data{false};
    default:
      return mustache::data{v.dump()};
  }
}

// Looks names up in the view, and partials ({{> name}}) among the templates only, so a view's
// keys never shadow a template. A partial's text is taken the first time the page uses it.
class PageContext : public mustache::context<std::string> {
 public:
  PageContext(const mustache::data* view, const std::map<std::string, std::string>* sources)
      : mustache::context<std::string>(view), sources_(sources) {}
  const mustache::data* get_partial(const std::string& name) const override {
    if (auto used = used_.find(name); used != used_.end()) return &used->second;
    auto it = sources_->find(name);
    if (it == sources_->end()) return nullptr;
    return &used_.emplace(name, mustache::data{it->second}).first->second;
  }

 private:
  const std::map<std::string, std::string>* sources_;
  mutable std::map<std::string, mustache::data> used_;  // this render's partials
};

}  // namespace

StatusOr<Templates> Templates::Build(std::map<std::string, std::string> sources) {
  for (const auto& [name, text] : sources) {
    mustache::mustache parsed{text};
    if (!parsed.is_valid()) {
      return InvalidArgument("template '" + name + "' does not parse: " + parsed.error_message());
    }
  }
  return Templates(std::move(sources));
}

std::string Templates::Render(const std::string& name, const nlohmann::json& view) const {
  auto it = sources_.find(name);
  if (it == sources_.end()) {
    std::fprintf(stderr, "flovyn: the program rendered no template named '%s'\n", name.c_str());
    std::abort();
  }
  mustache::data root = view.is_object() ? ToData(view) : mustache::data{mustache::data::type::object};
  PageContext ctx(&root, &sources_);
  // Each render parses its own copy: a parsed template keeps state while it renders.
  mustache::mustache page{it->second};
  return page.render(ctx);
}

}  // namespace flovyn::http
