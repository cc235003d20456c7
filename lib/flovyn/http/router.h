// Route table: method + path pattern ("/api/tenants/{id}") to handler. The same table serves
// requests and describes them (route names in metrics, the OpenAPI document).
// Built during startup, read-only afterwards: lookups are thread-safe once serving starts.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flovyn/http/message.h"

namespace flovyn::http {

struct RouteOptions {
  bool before_running = false;     // served in every stage (probes, metrics); others 503 until RUNNING
  bool run_inline = false;         // handler never blocks: run it on the I/O thread
  std::string summary;             // for documentation
  std::string tag;                 // OpenAPI grouping
  bool has_body = false;           // takes a JSON request body
  std::vector<std::string> query;  // documented query parameters
  std::string permission;          // the action a caller needs (documented; enforced by the handler's module)
};

struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;
  Handler handler;
  RouteOptions options;
};

struct Match {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;  // percent-decoded, one segment each
  bool path_known = false;                    // a route exists for the path with another method (405)
  std::string bad_param;                      // a parameter that decodes to a control character or NUL (400)
};

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});
  // `raw_path` as received (percent-encoded, without the query). It is split at '/' first and
  // each segment decoded after, so an encoded "%2F" stays inside its segment.
  Match Find(const std::string& method, const std::string& raw_path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace flovyn::http
