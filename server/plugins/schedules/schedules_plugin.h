// The schedules plugin: its tables, the runner that starts workflows on their fire times, its
// settings and metrics, and the REST routes to create, list, read (with the next five fire times
// and the recent runs), pause, resume, trigger, backfill and delete schedules.
#pragma once

#include <memory>

#include "engine/rest_support.h"
#include "engine/store.h"
#include "flovyn/config/config.h"
#include "flovyn/runtime/module.h"
#include "schedule_runner.h"
#include "schedule_store.h"

namespace flovyn::plugins {

void AddScheduleSettings(config::Schema& schema);

class SchedulesPlugin final : public runtime::Module {
 public:
  std::string name() const override { return "schedules"; }
  bool is_plugin() const override { return true; }
  std::vector<migrate::Migration> migrations() const override;
  void AddRoutes(http::Router& router) override;
  // Needs the engine's Store and RestContext among the services (the engine starts first).
  Status Start(const runtime::Context& ctx) override;
  void Stop() override;

 private:
  http::Response Create(const http::Request& req);
  http::Response List(const http::Request& req);
  http::Response Get(const http::Request& req);
  http::Response Delete(const http::Request& req);
  http::Response Pause(const http::Request& req);
  http::Response Resume(const http::Request& req);
  http::Response Trigger(const http::Request& req);
  http::Response Backfill(const http::Request& req);
  // The admitted caller and the schedule the path names (404 when another tenant's); for a POST,
  // its JSON body first (required when `body` is given, else optional and ignored).
  StatusOr<Schedule> Named(const http::Request& req, engine::Action action, engine::Caller* caller,
                           nlohmann::json* body = nullptr);

  engine::RestContext* rest_ = nullptr;
  std::unique_ptr<ScheduleStore> store_;
  std::unique_ptr<ScheduleMetrics> metrics_;
  std::unique_ptr<ScheduleRunner> runner_;
  int64_t max_per_tenant_ = 10000;
};

}  // namespace flovyn::plugins
