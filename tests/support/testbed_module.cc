#include "testbed_module.h"

#include <thread>

#include "flovyn/http/router.h"

namespace flovyn::testing {
namespace {

class SlowRoutes final : public runtime::Module {
 public:
  std::string name() const override { return "testbed"; }
  bool is_plugin() const override { return true; }
  std::vector<migrate::Migration> migrations() const override {
    return {{"testbed", 1, "marker",
             "CREATE TABLE testbed_marker (id int);\n"
             "SELECT 1 / (CASE WHEN to_regclass('public.fail_testbed_migration') IS NULL THEN 1 ELSE 0 END);\n"}};
  }
  void AddRoutes(http::Router& r) override {
    r.Add("GET", "/api/testbed/sleep", http::Sync([](const http::Request& req) {
            long ms = 0;
            auto it = req.query.find("ms");
            if (it != req.query.end()) ms = std::stol(it->second);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            return http::JsonResponse(200, R"({"slept":true})");
          }));
  }
};

}  // namespace

std::unique_ptr<runtime::Module> MakeTestbedModule() { return std::make_unique<SlowRoutes>(); }

}  // namespace flovyn::testing
