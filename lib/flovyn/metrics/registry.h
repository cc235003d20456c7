// A small Prometheus registry and text-format (0.0.4) writer. Debian carries no C++ client, so
// this covers exactly what Flovyn uses: counters, gauges and histograms with labels, plus
// collectors that read values at scrape time. Thread-safe; hot paths keep the child pointer.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "flovyn/core/mutex.h"

namespace flovyn::metrics {

using Labels = std::vector<std::string>;  // values, in the family's label-name order

class Counter {
 public:
  void Inc(double v = 1) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds) : bounds_(bounds), counts_(bounds.size() + 1) {}
  void Observe(double v);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double>& bounds_;
  mutable Mutex mu_;
  std::vector<uint64_t> counts_ GUARDED_BY(mu_);
  double sum_ GUARDED_BY(mu_) = 0;
  uint64_t count_ GUARDED_BY(mu_) = 0;
};

// Series one metric family may hold before new label sets go to its "other" series.
inline constexpr size_t kDefaultMaxSeries = 1000;

template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
  virtual ~Family() = default;
  // Returns a stable pointer; creating the child on first use. A family holds at most
  // kDefaultMaxSeries (or set_max_series) label sets: beyond that, new label sets share one series whose every label is
  // "other", and each such use is counted (overflowed()).
  T* With(const Labels& values);
  // Drops the series with these labels. Only for families whose children nobody holds (each
  // use goes through With).
  void Remove(const Labels& values);
  void set_max_series(size_t n) { max_series_ = n; }
  uint64_t overflowed() const { return overflowed_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  std::vector<std::pair<Labels, const T*>> children() const;

 protected:
  virtual std::unique_ptr<T> Make() {
    if constexpr (std::is_default_constructible_v<T>) {
      return std::make_unique<T>();
    } else {
      return nullptr;  // overridden (HistogramFamily)
    }
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  mutable Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_ GUARDED_BY(mu_);
  std::atomic<size_t> max_series_{kDefaultMaxSeries};
  std::atomic<uint64_t> overflowed_{0};
};

class HistogramFamily final : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels, std::vector<double> bounds)
      : Family(std::move(name), std::move(help), std::move(labels)), bounds_(std::move(bounds)) {}
  const std::vector<double>& bounds() const { return bounds_; }

 protected:
  std::unique_ptr<Histogram> Make() override { return std::make_unique<Histogram>(bounds_); }

 private:
  std::vector<double> bounds_;
};

// Writes samples for collectors that read their values at scrape time.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void Header(const std::string& name, const std::string& help, const char* type);
  void Sample(const std::string& name, const std::vector<std::string>& label_names, const Labels& values, double v);

 private:
  std::string& out_;
};

const std::vector<double>& LatencyBuckets();
inline std::vector<double> LatencyBucketsCopy() { return LatencyBuckets(); }
struct MetricSpec;
// Writes a collector sample's header from the catalogue.
void Header(Writer& w, const MetricSpec& spec);

class Registry {
 public:
  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                                std::vector<double> bounds);
  // From the catalogue (catalogue.h): the one place metrics are declared.
  Family<Counter>& CounterOf(const MetricSpec& spec);
  Family<Gauge>& GaugeOf(const MetricSpec& spec);
  HistogramFamily& HistogramOf(const MetricSpec& spec, std::vector<double> bounds = LatencyBucketsCopy());
  void AddCollector(std::function<void(Writer&)> collector);
  std::string Expose() const;

 private:
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<HistogramFamily>> histograms_;
  std::vector<std::function<void(Writer&)>> collectors_;
};

// Latency buckets in seconds, 0.5 ms .. 30 s: LatencyBuckets() above.

// process_* metrics read from /proc/self.
void AddProcessCollector(Registry& r);

std::string FormatValue(double v);
std::string EscapeLabel(const std::string& v);

}  // namespace flovyn::metrics
