// The engine's JSON REST API (/api/...): its routes, added to the server's router with the
// action each needs. The store and the REST context are the module's, built at Start, so
// handlers reach them through references to the module's members.
#pragma once

#include <functional>
#include <memory>

#include "engine/event_follow.h"
#include "engine/policy.h"
#include "engine/rest_support.h"
#include "engine/store.h"
#include "flovyn/http/router.h"

namespace flovyn::engine {

struct RestApi {
  http::Router& router;
  std::unique_ptr<RestContext>& rest;
  std::unique_ptr<Store>& store;
  FollowSlots& follow;  // open event streams (engine/event_follow.h)
  // A route that needs `action`: the caller is authenticated, authorised and mapped to the
  // {tenant} of the path (when it has one) before `f` runs.
  void Add(const char* method, const char* path, Action action,
           std::function<http::Response(const http::Request&, const Caller&)> f, http::RouteOptions o);
};

void AddRestRoutes(RestApi& api);

}  // namespace flovyn::engine
