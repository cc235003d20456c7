// flovyn-server with test-only routes, for tests that need a request to stay in flight:
// GET /api/testbed/sleep?ms=N answers 200 after N milliseconds.
#include <thread>

#include "flovyn/http/router.h"
#include "server_main.h"

namespace {

class SlowRoutes final : public flovyn::runtime::Module {
 public:
  std::string name() const override { return "testbed"; }
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
