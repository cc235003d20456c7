#include "flovyn/http/openapi.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace flovyn::http {

std::string OpenApiDocument(const Router& router, const std::string& prefix, const std::string& title,
                            const std::string& version) {
  using nlohmann::json;
  json error_schema = {{"type", "object"},
                       {"required", {"error"}},
                       {"properties",
                        {{"error",
                          {{"type", "object"},
                           {"required", {"code", "message"}},
                           {"properties", {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}};
  json doc = {{"openapi", "3.0.3"},
              {"info", {{"title", title}, {"version", version}}},
              {"paths", json::object()},
              {"components",
               {{"schemas", {{"Error", error_schema}}},
                {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
              {"security", json::array({{{"bearer", json::array()}}})}};
  json error_ref = {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}};
  for (const auto& r : router.routes()) {
    if (r.pattern.rfind(prefix, 0) != 0) continue;
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    json op = {{"summary", r.options.summary}, {"operationId", method + r.pattern}};
    if (!r.options.permission.empty()) op["x-flovyn-action"] = r.options.permission;
    if (!r.options.tag.empty()) op["tags"] = {r.options.tag};
    json params = json::array();
    for (const auto& seg : r.segments) {
      if (seg.size() > 2 && seg.front() == '{') {
        params.push_back({{"name", seg.substr(1, seg.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    for (const auto& q : r.options.query) {
      params.push_back({{"name", q}, {"in", "query"}, {"required", false}, {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    if (r.options.has_body) {
      op["requestBody"] = {{"required", true}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
    }
    op["responses"] = {
        {"200", {{"description", "OK"}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}},
        {"400", {{"description", "bad input"}, {"content", error_ref}}},
        {"401", {{"description", "unauthenticated"}, {"content", error_ref}}},
        {"403", {{"description", "another tenant's"}, {"content", error_ref}}},
        {"404", {{"description", "not found"}, {"content", error_ref}}},
        {"409", {{"description", "conflict"}, {"content", error_ref}}},
        {"413", {{"description", "too large"}, {"content", error_ref}}},
        {"503", {{"description", "not ready"}, {"content", error_ref}}}};
    doc["paths"][r.pattern][method] = op;
  }
  return doc.dump(2);
}

}  // namespace flovyn::http
