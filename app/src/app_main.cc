#include "app_main.h"

#include <spdlog/spdlog.h>

#include "app_settings.h"
#include "console_module.h"
#include "flovyn/runtime/cli.h"
#include "flovyn/runtime/process.h"
#include "flovyn/runtime/process_settings.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> app_migrations();
}

namespace flovyn::app {
namespace {

constexpr int64_t kMigrationLockKey = 0x466c6f76796e0101;  // "Flovyn" + app

constexpr const char* kUsage =
    "usage: flovyn-app [serve]             run the console (default)\n"
    "       flovyn-app migrate [--status]  apply migrations and exit, or print their state\n"
    "options: --config FILE (or CONFIG_FILE), --print-config, --version, --KEY=VALUE for any setting\n";

runtime::ProcessSpec SpecFrom(const Settings& s, const config::Values& values) {
  runtime::ProcessSpec spec;
  spec.program = "flovyn-app";
  spec.version = FLOVYN_VERSION;
  spec.probes = {"/api/health/live", "/api/health/ready", "/api/health/startup", ""};
  spec.migration_lock_key = kMigrationLockKey;
  spec.core_migrations = generated::app_migrations();
  spec.http_port = s.port;
  if (s.metrics_enabled) spec.metrics_port = s.metrics_port;
  spec.database_url = s.database_url;
  runtime::ApplyProcessSettings(values, spec);
  runtime::ApplyTracingSettings(values, FLOVYN_VERSION, spec);
  return spec;
}

}  // namespace

int Main(int argc, char** argv, const std::vector<ModuleFactory>& extra_modules) {
  runtime::ProgramHooks hooks;
  hooks.usage = kUsage;
  hooks.version = FLOVYN_VERSION;
  hooks.run = [&extra_modules](const runtime::Command& cmd, const config::Values& values) {
    Settings settings = Settings::From(values);
    if (!settings.production()) spdlog::warn("NODE_ENV={}: cookies are not marked Secure", settings.node_env);
    std::vector<std::unique_ptr<runtime::Module>> modules;
    modules.push_back(std::make_unique<ConsoleModule>(settings));
    for (const auto& f : extra_modules) modules.push_back(f());
    runtime::Process process(SpecFrom(settings, values), values, std::move(modules));
    return process.Run(cmd);
  };
  return runtime::Main(argc, argv, Schema(), hooks);
}

}  // namespace flovyn::app
