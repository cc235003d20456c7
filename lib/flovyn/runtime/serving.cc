#include "flovyn/runtime/serving.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/migrate/migrator.h"

namespace flovyn::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using lifecycle::Stage;
namespace catalogue = metrics::catalogue;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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

// Where this process reaches its own gRPC listener.
std::string SelfTarget(const std::string& bind, int port) {
  std::string host = bind;
  if (bind.empty() || bind == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (bind == "::" || bind == "[::]") {
    host = "[::1]";
  } else if (bind.find(':') != std::string::npos && bind.front() != '[') {
    host = "[" + bind + "]";
  }
  return host + ":" + std::to_string(port);
}

}  // namespace

db::PoolOptions PoolOptionsFor(const ProcessSpec& s, int size, const std::string& application) {
  db::PoolOptions o;
  o.url = s.database_url;
  o.application_name = application;
  o.max_size = size;
  o.connect_timeout = s.db_connect_timeout;
  o.statement_timeout = s.db_statement_timeout;
  o.acquire_timeout = s.db_connect_timeout;
  return o;
}

Serving::Serving(const ProcessSpec& spec, const config::Values& config, std::vector<std::unique_ptr<Module>>& modules,
                 std::vector<migrate::Migration> migrations)
    : spec_(spec),
      config_(config),
      modules_(modules),
      migrations_(std::move(migrations)),
      signals_([this](int) { drain_.Request(); }),
      pool_(PoolOptionsFor(spec, spec.db_pool_size, spec.program)),
      probe_pool_(PoolOptionsFor(spec, 1, spec.program + "-health")),
      monitor_(std::chrono::seconds(5), std::chrono::seconds(1), &registry_),
      live_monitor_(std::chrono::seconds(3), std::chrono::seconds(2), nullptr) {
  metrics::AddProcessCollector(registry_);
  registry_.GaugeOf(catalogue::kBuildInfo).With({spec_.program, spec_.version})->Set(1);
  SetStage(Stage::kStarting);
  StartTracing();
  AddPoolCollector(registry_, "main", pool_);
  if (spec_.nats_enabled) {
    nats_ = std::make_unique<nats::Connection>(nats::Options{.url = spec_.nats_url, .name = spec_.program});
    registry_.AddCollector([this](metrics::Writer& w) {
      metrics::Header(w, catalogue::kNatsConnected);
      w.Sample(catalogue::kNatsConnected.name, {}, {}, nats_->connected() ? 1 : 0);
      metrics::Header(w, catalogue::kNatsReconnects);
      w.Sample(catalogue::kNatsReconnects.name, {}, {}, static_cast<double>(nats_->reconnects()));
    });
  }
}

Serving::~Serving() { trace::SetGlobal(nullptr); }

void Serving::SetStage(Stage s) {
  auto& gauge = registry_.GaugeOf(catalogue::kLifecycleStage);
  for (Stage each : {Stage::kStarting, Stage::kMigrating, Stage::kStartingComponents, Stage::kRunning, Stage::kDraining,
                     Stage::kStopped}) {
    gauge.With({lifecycle::StageName(each)})->Set(each == s ? 1 : 0);
  }
  stage_.Set(s);
  spdlog::info("stage {} ({:.3f} s after start)", lifecycle::StageName(s), SecondsSince(started_));
}

void Serving::StartTracing() {
  if (!spec_.tracing) return;
  tracer_ = std::make_unique<trace::Tracer>(*spec_.tracing, &registry_);
  tracer_->Start();
  trace::SetGlobal(tracer_.get());
  spdlog::info("exporting traces over OTLP/gRPC to {}", spec_.tracing->endpoint);
}

void Serving::AddHealthChecks() {
  monitor_.Register("database", [this](Clock::time_point deadline) {
    health::CheckResult r;
    auto t0 = Clock::now();
    auto conn = probe_pool_.Acquire(deadline);
    Status s = conn.ok() ? (*conn)->Exec("SELECT 1", {}, deadline).status() : conn.status();
    r.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.up = s.ok();
    if (!r.up) r.error = s.code() == StatusCode::kDeadlineExceeded ? "timed out" : s.message();
    return r;
  });
  if (nats_) monitor_.Register("nats", [this](Clock::time_point) { return nats_->Check(); });
  for (auto& m : modules_) m->AddHealthChecks(monitor_);
}

// Liveness checks only the process itself: that its gRPC listener still completes a call on a
// fresh connection. A listener that stopped accepting never recovers on its own, so this is
// the one failure a restart fixes (docs/deployment.md); dependencies stay out of liveness.
void Serving::AddLivenessCheck() {
  live_monitor_.Register("grpcListener", [this](Clock::time_point deadline) {
    health::CheckResult r;
    int port = grpc_port_bound_.load();
    if (port == 0 || stage_.get() != Stage::kRunning) {
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

bool Serving::Listen() {
  AddHealthChecks();
  if (spec_.grpc_port) AddLivenessCheck();
  health::LegacyInfo legacy{
      .version = spec_.version,
      .plugins =
          [this] {
            std::vector<std::string> p;
            for (const auto& m : modules_) {
              if (m->is_plugin()) p.push_back(m->name());
            }
            return p;
          },
      .unknown_migrations =
          [this] {
            MutexLock l(unknown_mu_);
            return unknown_migrations_;
          },
  };
  health::AddProbeRoutes(router_, spec_.probes, stage_, monitor_, legacy, spec_.grpc_port ? &live_monitor_ : nullptr);
  for (auto& m : modules_) m->AddRoutes(router_);
  http::ServerOptions o;
  o.bind_address = spec_.bind_address;
  o.port = spec_.http_port;
  o.max_body_bytes = spec_.http_max_body_bytes;
  o.read_timeout = spec_.http_read_timeout;
  o.max_connections = spec_.http_max_connections;
  o.drain = &drain_;
  http_ = std::make_unique<http::Server>(
      o, router_, [this] { return stage_.ApiOpen(); }, &registry_);
  if (Status s = http_->Start(); !s.ok()) {
    spdlog::error("startup failed: {}; choose a free port with SERVER_PORT", s.message());
    return false;
  }
  spdlog::info("HTTP listening on {}:{}", spec_.bind_address, http_->port());
  return StartMetricsListener();
}

bool Serving::StartMetricsListener() {
  if (!spec_.metrics_port) return true;
  metrics_router_.Add("GET", "/metrics",
                      [this](http::Request&&, const http::Respond& respond) {
                        http::Response r;
                        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                        r.body = registry_.Expose();
                        respond(std::move(r));
                      },
                      {.before_running = true, .run_inline = true, .summary = "Prometheus metrics"});
  http::ServerOptions mo;
  mo.bind_address = spec_.bind_address;
  mo.port = *spec_.metrics_port;
  mo.io_threads = 1;
  mo.handler_threads = 1;
  metrics_http_ = std::make_unique<http::Server>(
      mo, metrics_router_, [] { return true; }, nullptr);
  if (Status s = metrics_http_->Start(); !s.ok()) {
    spdlog::error("startup failed: {}; choose a free port with METRICS__PORT", s.message());
    return false;
  }
  spdlog::info("metrics listening on {}:{}", spec_.bind_address, metrics_http_->port());
  return true;
}

// The database may still be starting (a pod beside its database): connection failures are
// retried until a drain is requested; any other failure is fatal.
Serving::Migrated Serving::Migrate() {
  SetStage(Stage::kMigrating);
  auto t0 = Clock::now();
  migrate::Migrator migrator(pool_, migrations_, spec_.migration_lock_key);
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    auto report = migrator.Run();
    if (report.ok()) {
      spdlog::info("migrations: {} applied, {} already applied ({:.3f} s)", report->applied, report->already_applied,
                   SecondsSince(t0));
      registry_.GaugeOf(catalogue::kMigrationDuration).With({})->Set(SecondsSince(t0));
      MutexLock l(unknown_mu_);
      for (const auto& u : report->unknown) {
        unknown_migrations_.push_back(u.component + "/" + std::to_string(u.version) + "_" + u.name);
        spdlog::warn("database has migration {} {}_{} unknown to this binary: the database is newer than {} {}",
                     u.component, u.version, u.name, spec_.program, spec_.version);
      }
      return Migrated::kDone;
    }
    StatusCode code = report.status().code();
    if (code != StatusCode::kUnavailable && code != StatusCode::kDeadlineExceeded) {
      spdlog::error("startup failed: {}", report.status().message());
      return Migrated::kFailed;
    }
    spdlog::warn("database not reachable for migrations ({}); retrying in {} ms", report.status().message(),
                 backoff.count());
    if (drain_.WaitFor(backoff)) {
      spdlog::warn("shutdown requested before migrations completed");
      return Migrated::kStopRequested;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

void Serving::StopEarly() {
  SetStage(Stage::kStopped);
  http_->StopAccepting();
}

bool Serving::StartComponents() {
  SetStage(Stage::kStartingComponents);
  if (nats_) {
    if (Status s = nats_->Start(); !s.ok()) {
      spdlog::error("startup failed: {}; check NATS__URL", s.message());
      return false;
    }
  }
  if (!StartModules() || !StartGrpc()) return false;
  SetStage(Stage::kRunning);
  spdlog::info("{} {} ready in {:.3f} s", spec_.program, spec_.version, SecondsSince(started_));
  return true;
}

// In order; a module that fails stops those started before it, in reverse.
bool Serving::StartModules() {
  Context ctx{config_, pool_, nats_.get(), registry_, stage_, services_};
  for (size_t started = 0; started < modules_.size(); ++started) {
    if (Status s = modules_[started]->Start(ctx); !s.ok()) {
      spdlog::error("startup failed: module {}: {}", modules_[started]->name(), s.message());
      for (size_t i = started; i-- > 0;) modules_[i]->Stop();
      return false;
    }
  }
  return true;
}

// Last, so workers connect only to a process whose components are all up.
bool Serving::StartGrpc() {
  if (!spec_.grpc_port) return true;
  grpc_ = std::make_unique<grpcsvc::Server>(spec_.bind_address + ":" + std::to_string(*spec_.grpc_port), stage_,
                                            monitor_, &registry_, spec_.grpc_limits);
  for (auto& m : modules_) m->AddGrpcServices(*grpc_);
  if (Status s = grpc_->Start(); !s.ok()) {
    spdlog::error("startup failed: {}; choose a free port with GRPC_SERVER_PORT", s.message());
    for (size_t i = modules_.size(); i-- > 0;) modules_[i]->Stop();
    return false;
  }
  grpc_port_bound_ = grpc_->port();
  spdlog::info("gRPC listening on {}:{}", spec_.bind_address, grpc_->port());
  return true;
}

// operations.md §4: keep serving for the delay, stop accepting and release waiting calls,
// finish in-flight requests within the timeout, stop components, close connections.
int Serving::Drain() {
  auto t_drain = Clock::now();
  SetStage(Stage::kDraining);
  // Keep-alive clients are told to reconnect (to another replica, once the endpoints change)
  // while the listener still accepts during the shutdown delay.
  drain_.BeginClosingConnections();
  auto phase = Clock::now();
  if (spec_.shutdown_delay.count() > 0) {
    std::this_thread::sleep_for(spec_.shutdown_delay);
    spdlog::info("drain: kept serving for the shutdown delay ({:.3f} s)", SecondsSince(phase));
  }
  phase = Clock::now();
  http_->StopAccepting();
  for (auto& m : modules_) m->BeginDrain();
  spdlog::info("drain: stopped accepting connections; released waiting calls ({:.3f} s)", SecondsSince(phase));
  auto deadline = Clock::now() + spec_.shutdown_timeout;
  FinishInFlight(deadline);
  StopComponents(deadline);
  SetStage(Stage::kStopped);
  http_->Stop(cut_ > 0 ? std::chrono::milliseconds(0) : std::chrono::milliseconds(1000));
  if (metrics_http_) metrics_http_->Stop();
  spdlog::info("{} stopped cleanly in {:.3f} s", spec_.program, SecondsSince(t_drain));
  spdlog::default_logger()->flush();
  if (cut_ > 0) {
    // A cancelled handler may still hold references into this object; end here.
    std::fflush(stdout);
    std::_Exit(0);
  }
  return 0;
}

void Serving::FinishInFlight(Clock::time_point deadline) {
  auto phase = Clock::now();
  std::thread grpc_stop;
  if (grpc_) {
    auto sys_deadline = std::chrono::system_clock::now() + spec_.shutdown_timeout;
    grpc_stop = std::thread([this, sys_deadline] { grpc_->Shutdown(sys_deadline); });
  }
  if (!http_->WaitIdle(deadline)) {
    cut_ = http_->CloseAll();
    spdlog::warn("drain: shutdown timeout reached; cancelled {} in-flight HTTP request(s)", cut_);
  }
  if (grpc_stop.joinable()) grpc_stop.join();
  spdlog::info("drain: in-flight requests finished ({:.3f} s)", SecondsSince(phase));
}

void Serving::StopComponents(Clock::time_point deadline) {
  auto phase = Clock::now();
  for (size_t i = modules_.size(); i-- > 0;) modules_[i]->Stop();
  if (tracer_) {
    // Within the shutdown budget: what is left of it, but at least a moment to flush.
    auto flush_deadline = std::max(deadline, Clock::now() + std::chrono::seconds(2));
    bool flushed = tracer_->Shutdown(flush_deadline);
    trace::SetGlobal(nullptr);
    if (!flushed) spdlog::warn("drain: some spans could not be exported ({} dropped in all)", tracer_->dropped());
  }
  spdlog::info("drain: background work stopped, telemetry flushed ({:.3f} s)", SecondsSince(phase));
  phase = Clock::now();
  if (nats_) nats_->Drain(std::chrono::seconds(2));
  pool_.Close();
  probe_pool_.Close();
  spdlog::info("drain: NATS and database closed ({:.3f} s)", SecondsSince(phase));
}

}  // namespace flovyn::runtime
