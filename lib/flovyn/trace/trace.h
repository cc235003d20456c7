// Distributed tracing: W3C trace context, spans, and a batch processor exporting over OTLP/gRPC.
// A span never blocks the code it measures: ended spans go to a bounded queue that a background
// thread exports in batches; when the queue is full the span is dropped and counted.
// The current span context is thread-local, so child spans (store transactions) find their
// parent without it being passed around. Tracer is thread-safe; a Span belongs to one thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "flovyn/core/mutex.h"

namespace flovyn::metrics {
class Registry;
class Counter;
}  // namespace flovyn::metrics

namespace flovyn::trace {

struct SpanContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  uint8_t flags = 1;  // sampled
  bool valid() const;
  // "00-<trace id>-<span id>-<flags>"
  std::string TraceParent() const;
  std::string TraceIdHex() const;
  std::string SpanIdHex() const;
  static std::optional<SpanContext> Parse(std::string_view traceparent);
};

enum class Kind { kInternal = 1, kServer = 2, kClient = 3 };

struct SpanData {
  SpanContext context;
  std::optional<std::array<uint8_t, 8>> parent_span_id;
  std::string name;
  Kind kind = Kind::kInternal;
  uint64_t start_ns = 0, end_ns = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
  bool error = false;
  std::string status_message;
};

struct TracerOptions {
  std::string endpoint;  // "host:port" or "http://host:port"
  std::string service_name = "flovyn";
  std::string service_version;
  size_t max_queue = 2048;
  size_t max_batch = 512;
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds export_timeout{5000};
};

class Tracer {
 public:
  Tracer(TracerOptions options, metrics::Registry* metrics);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  void Start();
  // Never blocks: drops (and counts) the span when the queue is full.
  void Enqueue(SpanData span);
  // Exports everything queued before the deadline; then stops the exporter. True when all
  // queued spans were exported.
  bool Shutdown(std::chrono::steady_clock::time_point deadline);
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t exported() const { return exported_.load(); }

 private:
  class Exporter;
  void Loop();
  bool ExportBatch(std::vector<SpanData>& batch, std::chrono::steady_clock::time_point deadline);

  TracerOptions options_;
  std::unique_ptr<Exporter> exporter_;
  Mutex mu_;
  CondVar cv_;
  std::deque<SpanData> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  bool flush_ GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> dropped_{0}, exported_{0};
  metrics::Counter* dropped_counter_ = nullptr;
  metrics::Counter* exported_counter_ = nullptr;
  std::thread thread_;
};

// The process-wide tracer (null when tracing is off).
Tracer* Global();
void SetGlobal(Tracer* t);

// The context of the span running on this thread, if any.
std::optional<SpanContext> Current();
// The running span's W3C traceparent, "" when there is none: what work created now carries to
// the worker that will run it.
std::string CurrentTraceParent();

// Makes `ctx` current on this thread for the object's lifetime.
class ScopedContext {
 public:
  explicit ScopedContext(std::optional<SpanContext> ctx);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::optional<SpanContext> previous_;
};

// A span, recording only when a tracer is set. Ends (and is queued) on End() or destruction.
class Span {
 public:
  // parent: explicit parent; when empty the current thread's context is the parent.
  Span(std::string name, Kind kind, std::optional<SpanContext> parent = std::nullopt, bool use_current = true);
  ~Span() { End(); }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  bool recording() const { return recording_; }
  void SetAttribute(std::string key, std::string value);
  void SetError(std::string message);
  void End();
  // This span's context; a fresh child context of the parent even when not recording, so trace
  // context still propagates to workers when export is off.
  const SpanContext& context() const { return data_.context; }

 private:
  SpanData data_;
  bool recording_ = false;
  bool ended_ = false;
};

SpanContext NewRootContext();
uint64_t NowNanos();

}  // namespace flovyn::trace
