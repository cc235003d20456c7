#include "flovyn/runtime/process.h"

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include "flovyn/db/pool.h"
#include "flovyn/grpc/server.h"
#include "flovyn/health/monitor.h"
#include "flovyn/http/server.h"
#include "flovyn/lifecycle/signals.h"
#include "flovyn/lifecycle/stage.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"
#include "flovyn/migrate/migrator.h"
#include "flovyn/nats/connection.h"
#include "flovyn/runtime/serving.h"

namespace flovyn::runtime {

Process::Process(ProcessSpec spec, const config::Values& config, std::vector<std::unique_ptr<Module>> modules)
    : spec_(std::move(spec)), config_(config), modules_(std::move(modules)) {}

Process::~Process() = default;

std::vector<migrate::Migration> Process::AllMigrations() const {
  std::vector<migrate::Migration> all = spec_.core_migrations;
  for (const auto& m : modules_) {
    auto more = m->migrations();
    all.insert(all.end(), more.begin(), more.end());
  }
  return all;
}

int Process::Run(const Command& cmd) {
  switch (cmd.kind) {
    case Command::kMigrate:
      return Migrate(false);
    case Command::kMigrateStatus:
      return Migrate(true);
    default:
      return Serve();
  }
}

int Process::Migrate(bool status_only) {
  db::Pool pool(PoolOptionsFor(spec_, 1, spec_.program + "-migrate"));
  migrate::Migrator migrator(pool, AllMigrations(), spec_.migration_lock_key);
  if (status_only) {
    auto st = migrator.Inspect();
    if (!st.ok()) {
      spdlog::error("cannot read migration state: {}", st.status().message());
      return 1;
    }
    std::fputs(migrate::Migrator::Format(*st).c_str(), stdout);
    bool clean = true;
    for (const auto& m : *st) clean = clean && m.state == migrate::State::kApplied;
    return clean ? 0 : 3;
  }
  auto report = migrator.Run();
  if (!report.ok()) {
    spdlog::error("migration failed: {}", report.status().message());
    return 1;
  }
  std::printf("%d migration(s) applied, %d already applied, in %lld ms\n", report->applied, report->already_applied,
              static_cast<long long>(report->duration.count()));
  for (const auto& u : report->unknown) {
    spdlog::warn("database has migration {} {}_{} that this binary does not know: the database is newer", u.component,
                 u.version, u.name);
  }
  return 0;
}

namespace {
// Descriptors are connections: use every one the hard limit allows.
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = before;
  }
  spdlog::info("open file limit: {} (was {}, hard limit {})", static_cast<unsigned long long>(rl.rlim_cur),
               static_cast<unsigned long long>(before), static_cast<unsigned long long>(rl.rlim_max));
}

}  // namespace

int Process::Serve() {
  RaiseDescriptorLimit();
  lifecycle::SignalWatcher::Block();  // before any thread exists
  Serving serving(spec_, config_, modules_, AllMigrations());
  if (!serving.Listen()) return 1;
  switch (serving.Migrate()) {
    case Serving::Migrated::kFailed:
      return 1;
    case Serving::Migrated::kStopRequested:
      serving.StopEarly();
      return 0;
    case Serving::Migrated::kDone:
      break;
  }
  if (!serving.StartComponents()) return 1;
  serving.WaitForDrainRequest();
  return serving.Drain();
}

}  // namespace flovyn::runtime
