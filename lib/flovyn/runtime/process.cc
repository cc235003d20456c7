#include "flovyn/runtime/process.h"

#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

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

namespace flovyn::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using lifecycle::Stage;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Set by the signal watcher; waited on by the main thread.
class DrainRequest {
 public:
  void Trigger() {
    {
      std::lock_guard<std::mutex> l(mu_);
      requested_ = true;
    }
    cv_.notify_all();
  }
  bool requested() {
    std::lock_guard<std::mutex> l(mu_);
    return requested_;
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return requested_; });
  }
  // Sleeps up to `d`; returns true when a drain was requested meanwhile.
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, d, [this] { return requested_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
};

db::PoolOptions PoolOptionsFor(const ProcessSpec& s, int size, const std::string& app) {
  db::PoolOptions o;
  o.url = s.database_url;
  o.application_name = app;
  o.max_size = size;
  o.connect_timeout = s.db_connect_timeout;
  o.statement_timeout = s.db_statement_timeout;
  o.acquire_timeout = s.db_connect_timeout;
  return o;
}

void AddPoolCollector(metrics::Registry& r, const std::string& name, db::Pool& pool) {
  namespace c = metrics::catalogue;
  r.AddCollector([name, &pool](metrics::Writer& w) {
    auto s = pool.stats();
    metrics::Header(w, c::kPoolConnections);
    w.Sample(c::kPoolConnections.name, {"pool", "state"}, {name, "in_use"}, s.in_use);
    w.Sample(c::kPoolConnections.name, {"pool", "state"}, {name, "idle"}, s.open - s.in_use);
    metrics::Header(w, c::kPoolMaxConnections);
    w.Sample(c::kPoolMaxConnections.name, {"pool"}, {name}, s.max_size);
    metrics::Header(w, c::kPoolWaiting);
    w.Sample(c::kPoolWaiting.name, {"pool"}, {name}, s.waiting);
    metrics::Header(w, c::kPoolConnectFailures);
    w.Sample(c::kPoolConnectFailures.name, {"pool"}, {name}, static_cast<double>(s.connect_failures_total));
    metrics::Header(w, c::kPoolAcquireTimeouts);
    w.Sample(c::kPoolAcquireTimeouts.name, {"pool"}, {name}, static_cast<double>(s.acquire_timeouts_total));
  });
}

}  // namespace

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
    case Command::kMigrate: return Migrate(false);
    case Command::kMigrateStatus: return Migrate(true);
    default: return Serve();
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
  std::printf("%d migration(s) applied, %d already applied, in %lld ms\n", report->applied,
              report->already_applied, static_cast<long long>(report->duration.count()));
  for (const auto& u : report->unknown) {
    spdlog::warn("database has migration {} {}_{} that this binary does not know: the database is newer",
                 u.component, u.version, u.name);
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

// Where this process reaches its own gRPC listener.
std::string SelfTarget(const std::string& bind, int port) {
  std::string host = bind;
  if (bind.empty() || bind == "0.0.0.0") host = "127.0.0.1";
  else if (bind == "::" || bind == "[::]") host = "[::1]";
  else if (bind.find(':') != std::string::npos && bind.front() != '[') host = "[" + bind + "]";
  return host + ":" + std::to_string(port);
}
}  // namespace

int Process::Serve() {
  auto t_start = Clock::now();
  RaiseDescriptorLimit();
  lifecycle::SignalWatcher::Block();
  DrainRequest drain;
  lifecycle::SignalWatcher signals([&drain](int) { drain.Trigger(); });

  lifecycle::StageCell stage;
  metrics::Registry registry;
  metrics::AddProcessCollector(registry);
  registry.GaugeOf(metrics::catalogue::kBuildInfo).With({spec_.program, spec_.version})->Set(1);
  auto& stage_gauge = registry.GaugeOf(metrics::catalogue::kLifecycleStage);
  auto* migration_seconds = registry.GaugeOf(metrics::catalogue::kMigrationDuration).With({});
  auto set_stage = [&](Stage s) {
    for (Stage each : {Stage::kStarting, Stage::kMigrating, Stage::kStartingComponents, Stage::kRunning,
                       Stage::kDraining, Stage::kStopped}) {
      stage_gauge.With({lifecycle::StageName(each)})->Set(each == s ? 1 : 0);
    }
    stage.Set(s);
    spdlog::info("stage {} ({:.3f} s after start)", lifecycle::StageName(s), SecondsSince(t_start));
  };
  set_stage(Stage::kStarting);

  std::unique_ptr<trace::Tracer> tracer;
  if (spec_.tracing) {
    tracer = std::make_unique<trace::Tracer>(*spec_.tracing, &registry);
    tracer->Start();
    trace::SetGlobal(tracer.get());
    spdlog::info("exporting traces over OTLP/gRPC to {}", spec_.tracing->endpoint);
  }
  struct ClearGlobalTracer {
    ~ClearGlobalTracer() { trace::SetGlobal(nullptr); }
  } clear_tracer;

  db::Pool pool(PoolOptionsFor(spec_, spec_.db_pool_size, spec_.program));
  // Probes get their own connection so they never queue behind traffic.
  db::Pool probe_pool(PoolOptionsFor(spec_, 1, spec_.program + "-health"));
  AddPoolCollector(registry, "main", pool);

  std::unique_ptr<nats::Connection> nats;
  if (spec_.nats_enabled) {
    nats = std::make_unique<nats::Connection>(nats::Options{.url = spec_.nats_url, .name = spec_.program});
    registry.AddCollector([&nats](metrics::Writer& w) {
      metrics::Header(w, metrics::catalogue::kNatsConnected);
      w.Sample(metrics::catalogue::kNatsConnected.name, {}, {}, nats->connected() ? 1 : 0);
      metrics::Header(w, metrics::catalogue::kNatsReconnects);
      w.Sample(metrics::catalogue::kNatsReconnects.name, {}, {}, static_cast<double>(nats->reconnects()));
    });
  }

  health::Monitor monitor(std::chrono::seconds(5), std::chrono::seconds(1), &registry);
  monitor.Register("database", [&probe_pool](Clock::time_point deadline) {
    health::CheckResult r;
    auto t0 = Clock::now();
    auto conn = probe_pool.Acquire(deadline);
    Status s = conn.ok() ? (*conn)->Exec("SELECT 1", {}, deadline).status() : conn.status();
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.up = s.ok();
    if (!r.up) r.error = s.code() == StatusCode::kDeadlineExceeded ? "timed out" : s.message();
    return r;
  });
  if (nats) monitor.Register("nats", [&nats](Clock::time_point) { return nats->Check(); });
  for (auto& m : modules_) m->AddHealthChecks(monitor);

  std::vector<std::string> unknown_migrations;
  std::mutex unknown_mu;
  http::Router router;
  health::LegacyInfo legacy{
      .version = spec_.version,
      .plugins =
          [this] {
            std::vector<std::string> p;
            for (const auto& m : modules_)
              if (m->is_plugin()) p.push_back(m->name());
            return p;
          },
      .unknown_migrations =
          [&] {
            std::lock_guard<std::mutex> l(unknown_mu);
            return unknown_migrations;
          },
  };
  // Liveness checks only the process itself: that its gRPC listener still completes a call on a
  // fresh connection. A listener that stopped accepting never recovers on its own, so this is
  // the one failure a restart fixes (docs/deployment.md); dependencies stay out of liveness.
  health::Monitor live_monitor(std::chrono::seconds(3), std::chrono::seconds(2), nullptr);
  std::atomic<int> grpc_port_bound{0};
  if (spec_.grpc_port) {
    live_monitor.Register("grpcListener", [&grpc_port_bound, &stage, this](Clock::time_point deadline) {
      health::CheckResult r;
      int port = grpc_port_bound.load();
      if (port == 0 || stage.get() != Stage::kRunning) {
        r.up = true;  // not listening yet, or draining: nothing to prove
        return r;
      }
      auto t0 = Clock::now();
      r.up = grpcsvc::ListenerAnswers(SelfTarget(spec_.bind_address, port), deadline);
      r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!r.up) r.error = "the gRPC listener does not complete calls on new connections";
      return r;
    });
  }
  health::AddProbeRoutes(router, spec_.probes, stage, monitor, legacy, spec_.grpc_port ? &live_monitor : nullptr);
  for (auto& m : modules_) m->AddRoutes(router);

  http::ServerOptions http_opts;
  http_opts.bind_address = spec_.bind_address;
  http_opts.port = spec_.http_port;
  http_opts.max_body_bytes = spec_.http_max_body_bytes;
  http_opts.read_timeout = spec_.http_read_timeout;
  http_opts.max_connections = spec_.http_max_connections;
  http::Server http(http_opts, router, [&stage] { return stage.ApiOpen(); }, &registry);
  if (Status s = http.Start(); !s.ok()) {
    spdlog::error("startup failed: {}; choose a free port with SERVER_PORT", s.message());
    return 1;
  }
  spdlog::info("HTTP listening on {}:{}", spec_.bind_address, http.port());

  http::Router metrics_router;
  std::unique_ptr<http::Server> metrics_http;
  if (spec_.metrics_port) {
    metrics_router.Add("GET", "/metrics", [&registry](http::Request&&, http::Respond respond) {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = registry.Expose();
      respond(std::move(r));
    }, {.before_running = true, .run_inline = true, .summary = "Prometheus metrics"});
    http::ServerOptions mo;
    mo.bind_address = spec_.bind_address;
    mo.port = *spec_.metrics_port;
    mo.io_threads = 1;
    mo.handler_threads = 1;
    metrics_http = std::make_unique<http::Server>(mo, metrics_router, [] { return true; }, nullptr);
    if (Status s = metrics_http->Start(); !s.ok()) {
      spdlog::error("startup failed: {}; choose a free port with METRICS__PORT", s.message());
      return 1;
    }
    spdlog::info("metrics listening on {}:{}", spec_.bind_address, metrics_http->port());
  }

  // Migrations. The database may still be starting (a pod beside its database): retry
  // connection failures until a drain is requested; any other failure is fatal.
  set_stage(Stage::kMigrating);
  auto t_migrate = Clock::now();
  {
    migrate::Migrator migrator(pool, AllMigrations(), spec_.migration_lock_key);
    auto backoff = std::chrono::milliseconds(200);
    for (;;) {
      auto report = migrator.Run();
      if (report.ok()) {
        spdlog::info("migrations: {} applied, {} already applied ({:.3f} s)", report->applied,
                     report->already_applied, SecondsSince(t_migrate));
        migration_seconds->Set(SecondsSince(t_migrate));
        std::lock_guard<std::mutex> l(unknown_mu);
        for (const auto& u : report->unknown) {
          unknown_migrations.push_back(u.component + "/" + std::to_string(u.version) + "_" + u.name);
          spdlog::warn("database has migration {} {}_{} unknown to this binary: the database is newer than {} {}",
                       u.component, u.version, u.name, spec_.program, spec_.version);
        }
        break;
      }
      if (report.status().code() != StatusCode::kUnavailable && report.status().code() != StatusCode::kDeadlineExceeded) {
        spdlog::error("startup failed: {}", report.status().message());
        return 1;
      }
      spdlog::warn("database not reachable for migrations ({}); retrying in {} ms", report.status().message(),
                   backoff.count());
      if (drain.WaitFor(backoff)) {
        spdlog::warn("shutdown requested before migrations completed");
        set_stage(Stage::kStopped);
        http.StopAccepting();
        return 0;
      }
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }

  set_stage(Stage::kStartingComponents);
  if (nats) {
    if (Status s = nats->Start(); !s.ok()) {
      spdlog::error("startup failed: {}; check NATS__URL", s.message());
      return 1;
    }
  }
  Context ctx{config_, pool, nats.get(), registry, stage};
  std::unique_ptr<grpcsvc::Server> grpc;
  size_t started = 0;
  for (; started < modules_.size(); ++started) {
    if (Status s = modules_[started]->Start(ctx); !s.ok()) {
      spdlog::error("startup failed: module {}: {}", modules_[started]->name(), s.message());
      for (size_t i = started; i-- > 0;) modules_[i]->Stop();
      return 1;
    }
  }
  if (spec_.grpc_port) {
    grpc = std::make_unique<grpcsvc::Server>(spec_.bind_address + ":" + std::to_string(*spec_.grpc_port), stage,
                                             monitor, &registry, spec_.grpc_limits);
    for (auto& m : modules_) m->AddGrpcServices(*grpc);
    if (Status s = grpc->Start(); !s.ok()) {
      spdlog::error("startup failed: {}; choose a free port with GRPC_SERVER_PORT", s.message());
      for (size_t i = modules_.size(); i-- > 0;) modules_[i]->Stop();
      return 1;
    }
    grpc_port_bound = grpc->port();
    spdlog::info("gRPC listening on {}:{}", spec_.bind_address, grpc->port());
  }
  set_stage(Stage::kRunning);
  spdlog::info("{} {} ready in {:.3f} s", spec_.program, spec_.version, SecondsSince(t_start));

  drain.Wait();

  // §4 graceful shutdown.
  auto t_drain = Clock::now();
  set_stage(Stage::kDraining);
  auto phase = Clock::now();
  if (spec_.shutdown_delay.count() > 0) {
    std::this_thread::sleep_for(spec_.shutdown_delay);
    spdlog::info("drain: kept serving for the shutdown delay ({:.3f} s)", SecondsSince(phase));
  }
  phase = Clock::now();
  http.StopAccepting();
  for (auto& m : modules_) m->BeginDrain();
  spdlog::info("drain: stopped accepting connections; released waiting calls ({:.3f} s)", SecondsSince(phase));

  phase = Clock::now();
  auto deadline = Clock::now() + spec_.shutdown_timeout;
  std::thread grpc_stop;
  if (grpc) {
    auto sys_deadline = std::chrono::system_clock::now() + spec_.shutdown_timeout;
    grpc_stop = std::thread([&grpc, sys_deadline] { grpc->Shutdown(sys_deadline); });
  }
  int cut = 0;
  if (!http.WaitIdle(deadline)) {
    cut = http.CloseAll();
    spdlog::warn("drain: shutdown timeout reached; cancelled {} in-flight HTTP request(s)", cut);
  }
  if (grpc_stop.joinable()) grpc_stop.join();
  spdlog::info("drain: in-flight requests finished ({:.3f} s)", SecondsSince(phase));

  phase = Clock::now();
  for (size_t i = modules_.size(); i-- > 0;) modules_[i]->Stop();
  if (tracer) {
    // Within the shutdown budget: what is left of it, but at least a moment to flush.
    auto flush_deadline = std::max(deadline, Clock::now() + std::chrono::seconds(2));
    bool flushed = tracer->Shutdown(flush_deadline);
    trace::SetGlobal(nullptr);
    if (!flushed) spdlog::warn("drain: some spans could not be exported ({} dropped in all)", tracer->dropped());
  }
  spdlog::info("drain: background work stopped, telemetry flushed ({:.3f} s)", SecondsSince(phase));

  phase = Clock::now();
  if (nats) nats->Drain(std::chrono::seconds(2));
  pool.Close();
  probe_pool.Close();
  spdlog::info("drain: NATS and database closed ({:.3f} s)", SecondsSince(phase));

  set_stage(Stage::kStopped);
  http.Stop(cut > 0 ? std::chrono::milliseconds(0) : std::chrono::milliseconds(1000));
  if (metrics_http) metrics_http->Stop();
  spdlog::info("{} stopped cleanly in {:.3f} s", spec_.program, SecondsSince(t_drain));
  spdlog::default_logger()->flush();
  if (cut > 0) {
    // A cancelled handler may still hold references into this frame; end here.
    std::fflush(stdout);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace flovyn::runtime
