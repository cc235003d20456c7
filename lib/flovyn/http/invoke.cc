#include "flovyn/http/invoke.h"

#include <memory>

#include <spdlog/spdlog.h>

#include "flovyn/trace/trace.h"

namespace flovyn::http {

void InvokeRoute(const Route& route, Request req, const Respond& respond) {
  std::shared_ptr<trace::Span> span;
  Respond reply = respond;
  if (!route.options.before_running) {
    span = std::make_shared<trace::Span>(req.method + " " + route.pattern, trace::Kind::kServer,
                                         trace::SpanContext::Parse(req.Header("traceparent")), false);
    span->SetAttribute("http.method", req.method);
    span->SetAttribute("http.target", req.target);
    reply = [respond, span](Response resp) {
      span->SetAttribute("http.status_code", std::to_string(resp.status));
      if (resp.status >= 500) span->SetError("HTTP " + std::to_string(resp.status));
      span->End();
      respond(std::move(resp));
    };
  }
  trace::ScopedContext scope(span ? std::optional<trace::SpanContext>(span->context()) : std::nullopt);
  try {
    route.handler(std::move(req), reply);
  } catch (const std::exception& e) {
    spdlog::error("handler failed: {}", e.what());
    reply(ErrorResponse(500, "INTERNAL", "internal error"));
  }
}

}  // namespace flovyn::http
