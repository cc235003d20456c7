// The probe endpoints of the operational contract (live, ready, startup and the server's
// legacy path), derived from the stage value and the dependency monitor.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "flovyn/health/monitor.h"
#include "flovyn/http/router.h"
#include "flovyn/lifecycle/stage.h"

namespace flovyn::health {

struct ProbePaths {
  std::string live, ready, startup;
  std::string legacy;  // empty: none
};

struct LegacyInfo {
  std::string version;
  std::function<std::vector<std::string>()> plugins;
  // Non-empty when the database holds migrations this binary does not know (it is newer).
  std::function<std::vector<std::string>()> unknown_migrations;
};

// `liveness`: checks of the process itself (never of a dependency); none when null.
void AddProbeRoutes(http::Router& router, const ProbePaths& paths, const lifecycle::StageCell& stage, Monitor& monitor,
                    LegacyInfo legacy = {}, Monitor* liveness = nullptr);

// True when the process may receive traffic (the same rule as the ready probe).
bool Ready(const lifecycle::StageCell& stage, const Report& report);

std::string ReportJson(const Report& r, const lifecycle::StageCell& stage, bool up);

}  // namespace flovyn::health
