// The worker-token plugin: its table, the authenticator that accepts `fwt_` tokens on the
// worker protocol, and the REST routes to create (shown once), list and revoke tokens. It finds
// the engine's authenticator chain and REST admission through the runtime's services, so it
// needs nothing from the engine but those two.
#pragma once

#include <memory>

#include "engine/auth.h"
#include "engine/rest_support.h"
#include "flovyn/runtime/module.h"
#include "worker_token_auth.h"
#include "worker_token_store.h"

namespace flovyn::plugins {

class WorkerTokenPlugin final : public runtime::Module {
 public:
  explicit WorkerTokenPlugin(std::string secret) : secret_(std::move(secret)) {}
  std::string name() const override { return "worker-token"; }
  bool is_plugin() const override { return true; }
  std::vector<migrate::Migration> migrations() const override;
  void AddRoutes(http::Router& router) override;
  // Needs the engine's AuthChain and RestContext among the services (the engine starts first).
  Status Start(const runtime::Context& ctx) override;

 private:
  http::Response Create(const http::Request& req);
  http::Response List(const http::Request& req);
  http::Response Revoke(const http::Request& req);

  std::string secret_;
  engine::RestContext* rest_ = nullptr;
  std::unique_ptr<WorkerTokenStore> store_;
  std::shared_ptr<WorkerTokenAuthenticator> authenticator_;
};

}  // namespace flovyn::plugins
