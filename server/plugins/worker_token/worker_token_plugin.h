// The worker-token plugin: its table, the authenticator that accepts `fwt_` tokens on the
// worker protocol, and the REST routes to create (shown once), list and revoke tokens.
#pragma once

#include <memory>

#include "engine/auth.h"
#include "engine/engine_module.h"

namespace flovyn::plugins {

class WorkerTokenPlugin final : public runtime::Module {
 public:
  WorkerTokenPlugin(engine::EngineModule& engine, std::string secret) : engine_(engine), secret_(std::move(secret)) {}
  std::string name() const override { return "worker-token"; }
  bool is_plugin() const override { return true; }
  std::vector<migrate::Migration> migrations() const override;
  void AddRoutes(http::Router& router) override;
  Status Start(const runtime::Context& ctx) override;

 private:
  engine::EngineModule& engine_;
  std::string secret_;
  db::Pool* pool_ = nullptr;
  std::shared_ptr<engine::WorkerTokenAuthenticator> authenticator_;
};

}  // namespace flovyn::plugins
