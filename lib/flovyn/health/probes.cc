#include "flovyn/health/probes.h"

#include <nlohmann/json.hpp>

namespace flovyn::health {
namespace {

using lifecycle::Stage;

http::Response ProbeResponse(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.With("Cache-Control", "no-store");
  return r;
}

nlohmann::json ChecksJson(const Report& r) {
  nlohmann::json checks = nlohmann::json::object();
  for (const auto& [name, c] : r.checks) {
    nlohmann::json j = {{"status", c.up ? "UP" : "DOWN"}};
    j["latencyMs"] = std::round(c.latency_ms * 10) / 10;
    if (!c.up) j["error"] = c.error;
    checks[name] = j;
  }
  return checks;
}

}  // namespace

bool Ready(const lifecycle::StageCell& stage, const Report& report) {
  return stage.get() == Stage::kRunning && report.all_up;
}

std::string ReportJson(const Report& r, const lifecycle::StageCell& stage, bool up) {
  // Probes ask many times per run: the body of the last report is kept, per thread.
  struct Memo {
    uint64_t id = 0;
    Stage stage = Stage::kStarting;
    bool up = false;
    std::string body;
  };
  thread_local Memo memo;
  Stage now = stage.get();
  if (r.id != 0 && memo.id == r.id && memo.stage == now && memo.up == up) return memo.body;
  nlohmann::json j = {{"status", up ? "UP" : "DOWN"}, {"checks", ChecksJson(r)}};
  if (now != Stage::kRunning) j["stage"] = lifecycle::StageName(now);
  std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (r.id != 0) memo = {r.id, now, up, body};
  return body;
}

void AddProbeRoutes(http::Router& router, const ProbePaths& paths, const lifecycle::StageCell& stage, Monitor& monitor,
                    LegacyInfo legacy, Monitor* liveness) {
  http::RouteOptions probe{.before_running = true, .run_inline = true, .summary = ""};

  probe.summary = "Liveness: the process is alive and its listeners accept. Checks no dependency.";
  router.Add(
      "GET", paths.live,
      [&stage, liveness](http::Request&&, const http::Respond& respond) {
        if (liveness == nullptr) {
          nlohmann::json j = {{"status", "UP"}, {"checks", nlohmann::json::object()}};
          if (stage.get() != Stage::kRunning) j["stage"] = lifecycle::StageName(stage.get());
          respond(ProbeResponse(200, j.dump()));
          return;
        }
        liveness->Evaluate([&stage, respond](const Report& r) {
          respond(ProbeResponse(r.all_up ? 200 : 503, ReportJson(r, stage, r.all_up)));
        });
      },
      probe);

  probe.summary = "Readiness: RUNNING and every dependency UP.";
  router.Add(
      "GET", paths.ready,
      [&stage, &monitor](http::Request&&, const http::Respond& respond) {
        if (stage.get() != Stage::kRunning) {
          // Not serving traffic in this stage whatever the dependencies say; no check needed.
          respond(ProbeResponse(503, ReportJson(Report{false, {}}, stage, false)));
          return;
        }
        monitor.Evaluate([&stage, respond](const Report& r) {
          bool ok = Ready(stage, r);
          respond(ProbeResponse(ok ? 200 : 503, ReportJson(r, stage, ok)));
        });
      },
      probe);

  probe.summary = "Startup: initialisation done and every dependency UP.";
  router.Add(
      "GET", paths.startup,
      [&stage, &monitor](http::Request&&, const http::Respond& respond) {
        if (!stage.StartupDone()) {
          respond(ProbeResponse(503, ReportJson(Report{false, {}}, stage, false)));
          return;
        }
        monitor.Evaluate([&stage, respond](const Report& r) {
          respond(ProbeResponse(r.all_up ? 200 : 503, ReportJson(r, stage, r.all_up)));
        });
      },
      probe);

  if (!paths.legacy.empty()) {
    probe.summary = "Legacy health: UP while RUNNING.";
    router.Add(
        "GET", paths.legacy,
        [&stage, legacy](http::Request&&, const http::Respond& respond) {
          bool up = stage.get() == Stage::kRunning;
          nlohmann::json j = {{"status", up ? "UP" : "DOWN"}, {"version", legacy.version}};
          j["plugins"] = legacy.plugins ? legacy.plugins() : std::vector<std::string>{};
          if (legacy.unknown_migrations) {
            auto unknown = legacy.unknown_migrations();
            if (!unknown.empty()) j["schema"] = {{"status", "DATABASE_NEWER"}, {"unknownMigrations", unknown}};
          }
          respond(ProbeResponse(up ? 200 : 503, j.dump()));
        },
        probe);
  }
}

}  // namespace flovyn::health
