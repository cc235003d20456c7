// flovyn-server with a test-only plugin:
// - GET /api/testbed/sleep?ms=N answers 200 after N milliseconds (requests that stay in flight);
// - a plugin migration that fails, after creating a table, when the table
//   `fail_testbed_migration` exists (a failed migration must leave no trace).
#include <thread>

#include "flovyn/http/router.h"
#include "server_main.h"

namespace {

class SlowRoutes final : public flovyn::runtime::Module {
 public:
  std::string name() const override { return "testbed"; }
  bool is_plugin() const override { return true; }
  std::vector<flovyn::migrate::Migration> migrations() const override {
    return {{"testbed", 1, "marker",
             "CREATE TABLE testbed_marker (id int);\n"
             "SELECT 1 / (CASE WHEN to_regclass('public.fail_testbed_migration') IS NULL THEN 1 ELSE 0 END);\n"}};
  }
  void AddRoutes(flovyn::http::Router& r) override {
    r.Add("GET", "/api/testbed/sleep", flovyn::http::Sync([](const flovyn::http::Request& req) {
      long ms = 0;
      auto it = req.query.find("ms");
      if (it != req.query.end()) ms = std::stol(it->second);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return flovyn::http::JsonResponse(200, R"({"slept":true})");
    }));
  }
};

}  // namespace

int main(int argc, char** argv) {
  return flovyn::server::Main(argc, argv, {[] { return std::make_unique<SlowRoutes>(); }});
}
