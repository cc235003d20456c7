// Running a route's handler for one request: inside a server span continuing the caller's
// traceparent (probes and metrics, the routes that answer before the process is running, are
// not traced), with a handler that throws answered by a 500. Thread-safe.
#pragma once

#include "flovyn/http/router.h"

namespace flovyn::http {

void InvokeRoute(const Route& route, Request req, const Respond& respond);

}  // namespace flovyn::http
