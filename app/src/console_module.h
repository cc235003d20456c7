// flovyn-app as a module of the shared runtime: its migrations, the `backend` health check,
// the identity endpoints the server relies on (JWKS, API-key validation) and the console pages.
#pragma once

#include <atomic>
#include <memory>

#include "app_settings.h"
#include "backend.h"
#include "flovyn/http/message.h"
#include "flovyn/runtime/module.h"
#include "identity.h"

namespace flovyn::app {

class ConsoleModule final : public runtime::Module {
 public:
  explicit ConsoleModule(Settings settings);
  ~ConsoleModule() override;
  std::string name() const override { return "console"; }
  void AddRoutes(http::Router& router) override;
  void AddHealthChecks(health::Monitor& monitor) override;
  Status Start(const runtime::Context& ctx) override;

 private:
  struct Visit;  // one request's session, cookies and CSRF state
  using Page = std::function<http::Response(const http::Request&, Visit&)>;

  // Pages for signed-in users: a session is required (else to /sign-in); POSTs need the CSRF token.
  http::Handler Member(Page page);
  // Sign-in and sign-up: CSRF bound to an anonymous visitor cookie.
  http::Handler Anonymous(Page page);
  bool SecureCookies(const http::Request& req) const;
  std::string Origin(const http::Request& req) const;
  // The client's address for sign-in throttling: X-Forwarded-For's last hop only when
  // BETTER_AUTH_TRUST_HOST is on, else the connection's peer.
  std::string ClientAddress(const http::Request& req) const;
  // Adds the visit's cookies and, in production, HSTS.
  http::Response Finish(http::Response r, const Visit& v) const;
  std::string SessionCookie(const http::Request& req, const std::string& value, long max_age) const;

  void AddIdentityRoutes(http::Router& r);

  http::Response Overview(const http::Request&, Visit&);
  http::Response Workflows(const http::Request&, Visit&);
  http::Response StartWorkflow(const http::Request&, Visit&);
  http::Response WorkflowDetail(const http::Request&, Visit&);
  // The detail page's live timeline: Server-Sent Events of the events after ?after= (or
  // Last-Event-ID), relayed from the server; "end" once the workflow finished.
  http::Response WorkflowLive(const http::Request&, Visit&);
  http::Response CancelWorkflow(const http::Request&, Visit&);
  http::Response ResolvePromise(const http::Request&, Visit&);
  http::Response Tasks(const http::Request&, Visit&);
  http::Response Workers(const http::Request&, Visit&);
  http::Response Schedules(const http::Request&, Visit&);
  http::Response ScheduleDetail(const http::Request&, Visit&);
  http::Response ScheduleAction(const http::Request&, Visit&);
  http::Response Eventhooks(const http::Request&, Visit&);
  http::Response ReprocessEvent(const http::Request&, Visit&);
  http::Response WorkerTokens(const http::Request&, Visit&);
  http::Response CreateWorkerToken(const http::Request&, Visit&);
  http::Response RevokeWorkerToken(const http::Request&, Visit&);
  http::Response ApiKeys(const http::Request&, Visit&);
  http::Response CreateApiKey(const http::Request&, Visit&);
  http::Response RevokeApiKey(const http::Request&, Visit&);
  http::Response SignInPage(const http::Request&, Visit&);
  http::Response SignIn(const http::Request&, Visit&);
  http::Response SignUpPage(const http::Request&, Visit&);
  http::Response SignUp(const http::Request&, Visit&);
  http::Response SignOut(const http::Request&, Visit&);

  Settings settings_;
  std::unique_ptr<PasswordPool> passwords_;
  std::unique_ptr<Identity> identity_;
  std::unique_ptr<KeyRing> keys_;
  std::unique_ptr<Backend> backend_;
  std::shared_ptr<std::atomic<int>> live_pages_ = std::make_shared<std::atomic<int>>(0);  // open WorkflowLive streams
};

}  // namespace flovyn::app
