// The command line both programs share: `<program> [serve|migrate [--status]] [--config F]
// [--print-config] [--key=value ...]`, with configuration loaded from the program's schema.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flovyn/config/config.h"
#include "flovyn/metrics/catalogue.h"

namespace flovyn::runtime {

struct Command {
  enum Kind {
    kServe,
    kMigrate,
    kMigrateStatus,
    kPrintConfig,
    kHelp,
    kVersion,
    kMetricsCatalogue,
    kConfigReference
  } kind = kServe;
  std::vector<std::string> config_flags;  // passed to config::Load
};

Command ParseCommand(int argc, char** argv);

struct ProgramHooks {
  // Builds and runs the program for `kServe`, `kMigrate` and `kMigrateStatus`.
  std::function<int(const Command&, const config::Values&)> run;
  std::string usage;
  std::string version;
  // Extra documents printed by a flag and exit ("--limits-catalogue" -> docs/limits.md).
  std::map<std::string, std::function<std::string()>> documents;
  // The program's own metric series, listed by --metrics-catalogue after the shared ones.
  std::vector<const metrics::MetricSpec*> metrics;
};

// Parses the command line, loads the configuration (reporting every error and exiting 2),
// handles --print-config/--help/--version, initialises logging and calls hooks.run.
int Main(int argc, char** argv, const config::Schema& schema, const ProgramHooks& hooks);

}  // namespace flovyn::runtime
