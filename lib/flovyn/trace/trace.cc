#include "flovyn/trace/trace.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace flovyn::trace {

namespace otlp = opentelemetry::proto;

namespace {

std::atomic<Tracer*> g_tracer{nullptr};
thread_local std::optional<SpanContext> t_current;

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid());
  }());
  return rng;
}

template <size_t N>
void Fill(std::array<uint8_t, N>& a) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = Rng()();
      for (size_t j = 0; j < 8 && i + j < N; ++j) a[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; }));
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : a) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

template <size_t N>
bool FromHex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    int hi = v(s[2 * i]), lo = v(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

std::string Target(const std::string& endpoint) {
  std::string t = endpoint;
  for (const char* scheme : {"http://", "https://", "grpc://"}) {
    if (t.rfind(scheme, 0) == 0) t = t.substr(std::string(scheme).size());
  }
  while (!t.empty() && t.back() == '/') t.pop_back();
  return t;
}

void Attr(otlp::common::v1::KeyValue* kv, const std::string& k, const std::string& v) {
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}

}  // namespace

bool SpanContext::valid() const {
  return std::any_of(trace_id.begin(), trace_id.end(), [](uint8_t b) { return b != 0; }) &&
         std::any_of(span_id.begin(), span_id.end(), [](uint8_t b) { return b != 0; });
}

std::string SpanContext::TraceParent() const {
  static const char* hex = "0123456789abcdef";
  return "00-" + Hex(trace_id) + "-" + Hex(span_id) + "-" + std::string{hex[flags >> 4], hex[flags & 15]};
}

std::string SpanContext::TraceIdHex() const { return Hex(trace_id); }
std::string SpanContext::SpanIdHex() const { return Hex(span_id); }

std::optional<SpanContext> SpanContext::Parse(std::string_view s) {
  // version(2)-traceid(32)-spanid(16)-flags(2)
  if (s.size() < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  if (s.substr(0, 2) == "ff") return std::nullopt;
  SpanContext c;
  std::array<uint8_t, 1> f{};
  if (!FromHex(s.substr(3, 32), c.trace_id) || !FromHex(s.substr(36, 16), c.span_id) || !FromHex(s.substr(53, 2), f)) {
    return std::nullopt;
  }
  c.flags = f[0];
  if (!c.valid()) return std::nullopt;
  return c;
}

SpanContext NewRootContext() {
  SpanContext c;
  Fill(c.trace_id);
  Fill(c.span_id);
  return c;
}

uint64_t NowNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

Tracer* Global() { return g_tracer.load(std::memory_order_acquire); }
void SetGlobal(Tracer* t) { g_tracer.store(t, std::memory_order_release); }
std::optional<SpanContext> Current() { return t_current; }

std::string CurrentTraceParent() { return t_current ? t_current->TraceParent() : ""; }

ScopedContext::ScopedContext(std::optional<SpanContext> ctx) : previous_(t_current) {
  if (ctx) t_current = ctx;
}
ScopedContext::~ScopedContext() { t_current = previous_; }

Span::Span(std::string name, Kind kind, std::optional<SpanContext> parent, bool use_current) {
  if (!parent && use_current) parent = t_current;
  if (parent && parent->valid()) {
    data_.context.trace_id = parent->trace_id;
    data_.context.flags = parent->flags;
    data_.parent_span_id = parent->span_id;
    Fill(data_.context.span_id);
  } else {
    data_.context = NewRootContext();
  }
  recording_ = Global() != nullptr;
  if (recording_) {
    data_.name = std::move(name);
    data_.kind = kind;
    data_.start_ns = NowNanos();
  }
}

void Span::SetAttribute(std::string key, std::string value) {
  if (recording_) data_.attributes.emplace_back(std::move(key), std::move(value));
}

void Span::SetError(std::string message) {
  if (!recording_) return;
  data_.error = true;
  data_.status_message = std::move(message);
}

void Span::End() {
  if (ended_) return;
  ended_ = true;
  if (!recording_) return;
  data_.end_ns = NowNanos();
  if (Tracer* t = Global()) t->Enqueue(std::move(data_));
}

// ---------------------------------------------------------------- Tracer

class Tracer::Exporter {
 public:
  explicit Exporter(const std::string& target)
      : stub_(otlp::collector::trace::v1::TraceService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {}
  grpc::Status Export(const otlp::collector::trace::v1::ExportTraceServiceRequest& req,
                      std::chrono::steady_clock::time_point deadline) {
    grpc::ClientContext ctx;
    auto left = deadline - std::chrono::steady_clock::now();
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
    otlp::collector::trace::v1::ExportTraceServiceResponse res;
    return stub_->Export(&ctx, req, &res);
  }

 private:
  std::unique_ptr<otlp::collector::trace::v1::TraceService::Stub> stub_;
};

Tracer::Tracer(TracerOptions options, metrics::Registry* metrics)
    : options_(std::move(options)), exporter_(std::make_unique<Exporter>(Target(options_.endpoint))) {
  if (metrics != nullptr) {
    dropped_counter_ = metrics->CounterOf(metrics::catalogue::kTraceSpansDropped).With({});
    exported_counter_ = metrics->CounterOf(metrics::catalogue::kTraceSpansExported).With({});
  }
}

Tracer::~Tracer() { Shutdown(std::chrono::steady_clock::now()); }

void Tracer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Tracer::Enqueue(SpanData span) {
  {
    MutexLock l(mu_);
    if (!stop_ && queue_.size() < options_.max_queue) {
      queue_.push_back(std::move(span));
      if (queue_.size() >= options_.max_batch) cv_.NotifyOne();
      return;
    }
  }
  ++dropped_;
  if (dropped_counter_) dropped_counter_->Inc();
}

void Tracer::Loop() {
  UniqueLock l(mu_);
  for (;;) {
    auto until = std::chrono::steady_clock::now() + options_.interval;
    while (!stop_ && !flush_ && queue_.size() < options_.max_batch && cv_.WaitUntil(mu_, until)) {
    }
    if (stop_) return;
    while (!queue_.empty()) {
      std::vector<SpanData> batch;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      l.Unlock();
      ExportBatch(batch, std::chrono::steady_clock::now() + options_.export_timeout);
      l.Lock();
      if (stop_) return;
    }
    flush_ = false;
  }
}

bool Tracer::ExportBatch(std::vector<SpanData>& batch, std::chrono::steady_clock::time_point deadline) {
  if (batch.empty()) return true;
  otlp::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  Attr(rs->mutable_resource()->add_attributes(), "service.name", options_.service_name);
  if (!options_.service_version.empty()) {
    Attr(rs->mutable_resource()->add_attributes(), "service.version", options_.service_version);
  }
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("flovyn");
  for (const auto& s : batch) {
    auto* p = ss->add_spans();
    p->set_trace_id(std::string(s.context.trace_id.begin(), s.context.trace_id.end()));
    p->set_span_id(std::string(s.context.span_id.begin(), s.context.span_id.end()));
    if (s.parent_span_id) p->set_parent_span_id(std::string(s.parent_span_id->begin(), s.parent_span_id->end()));
    p->set_name(s.name);
    p->set_kind(static_cast<otlp::trace::v1::Span::SpanKind>(static_cast<int>(s.kind)));
    p->set_start_time_unix_nano(s.start_ns);
    p->set_end_time_unix_nano(s.end_ns);
    for (const auto& [k, v] : s.attributes) Attr(p->add_attributes(), k, v);
    if (s.error) {
      p->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
      p->mutable_status()->set_message(s.status_message);
    }
  }
  grpc::Status st = exporter_->Export(req, deadline);
  if (!st.ok()) {
    dropped_ += batch.size();
    if (dropped_counter_) dropped_counter_->Inc(static_cast<double>(batch.size()));
    spdlog::debug("trace export failed ({}); dropped {} span(s)", st.error_message(), batch.size());
    return false;
  }
  exported_ += batch.size();
  if (exported_counter_) exported_counter_->Inc(static_cast<double>(batch.size()));
  return true;
}

bool Tracer::Shutdown(std::chrono::steady_clock::time_point deadline) {
  std::vector<SpanData> rest;
  {
    MutexLock l(mu_);
    if (stop_) return true;
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  {
    MutexLock l(mu_);
    rest.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
  }
  bool ok = true;
  for (size_t i = 0; i < rest.size(); i += options_.max_batch) {
    std::vector<SpanData> batch(
        std::make_move_iterator(rest.begin() + static_cast<long>(i)),
        std::make_move_iterator(rest.begin() + static_cast<long>(std::min(rest.size(), i + options_.max_batch))));
    if (std::chrono::steady_clock::now() >= deadline) {
      dropped_ += batch.size();
      ok = false;
      continue;
    }
    ok = ExportBatch(batch, deadline) && ok;
  }
  return ok;
}

}  // namespace flovyn::trace
