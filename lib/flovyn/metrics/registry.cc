#include "flovyn/metrics/registry.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "flovyn/core/mutex.h"
#include "flovyn/metrics/catalogue.h"

namespace flovyn::metrics {

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  MutexLock l(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  MutexLock l(mu_);
  uint64_t acc = 0;
  for (uint64_t c : counts_) {
    acc += c;
    s.cumulative.push_back(acc);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

template <typename T>
T* Family<T>::With(const Labels& values) {
  MutexLock l(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return it->second.get();
  if (children_.size() >= max_series_.load(std::memory_order_relaxed)) {
    overflowed_.fetch_add(1, std::memory_order_relaxed);
    auto& other = children_[Labels(values.size(), "other")];
    if (!other) other = Make();
    return other.get();
  }
  auto [ins, _] = children_.emplace(values, Make());
  return ins->second.get();
}

template <typename T>
void Family<T>::Remove(const Labels& values) {
  MutexLock l(mu_);
  children_.erase(values);
}

template <typename T>
std::vector<std::pair<Labels, const T*>> Family<T>::children() const {
  MutexLock l(mu_);
  std::vector<std::pair<Labels, const T*>> out;
  for (const auto& [k, v] : children_) out.emplace_back(k, v.get());
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {  // shortest text that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelSet(const std::vector<std::string>& names, const Labels& values, const std::string& extra = "") {
  if (names.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i) out += ',';
    out += names[i] + "=\"" + EscapeLabel(values[i]) + "\"";
  }
  if (!extra.empty()) {
    if (!names.empty()) out += ',';
    out += extra;
  }
  return out + "}";
}
}  // namespace

void Writer::Header(const std::string& name, const std::string& help, const char* type) {
  out_ += "# HELP " + name + " " + EscapeHelp(help) + "\n# TYPE " + name + " " + type + "\n";
}

void Writer::Sample(const std::string& name, const std::vector<std::string>& label_names, const Labels& values,
                    double v) {
  out_ += name + LabelSet(label_names, values) + " " + FormatValue(v) + "\n";
}

// Asking for a metric twice gives the same family (one HELP/TYPE block per name).
Family<Counter>& Registry::AddCounter(std::string name, std::string help, std::vector<std::string> labels) {
  MutexLock l(mu_);
  for (auto& f : counters_) {
    if (f->name() == name) return *f;
  }
  counters_.push_back(std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(labels)));
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help, std::vector<std::string> labels) {
  MutexLock l(mu_);
  for (auto& f : gauges_) {
    if (f->name() == name) return *f;
  }
  gauges_.push_back(std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(labels)));
  return *gauges_.back();
}

HistogramFamily& Registry::AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                                        std::vector<double> bounds) {
  MutexLock l(mu_);
  for (auto& f : histograms_) {
    if (f->name() == name) return *f;
  }
  histograms_.push_back(
      std::make_unique<HistogramFamily>(std::move(name), std::move(help), std::move(labels), std::move(bounds)));
  return *histograms_.back();
}

Family<Counter>& Registry::CounterOf(const MetricSpec& m) { return AddCounter(m.name, m.help, m.labels); }
Family<Gauge>& Registry::GaugeOf(const MetricSpec& m) { return AddGauge(m.name, m.help, m.labels); }
HistogramFamily& Registry::HistogramOf(const MetricSpec& m, std::vector<double> bounds) {
  return AddHistogram(m.name, m.help, m.labels, std::move(bounds));
}

void Header(Writer& w, const MetricSpec& m) {
  w.Header(m.name, m.help,
           m.type == MetricType::kCounter ? "counter"
           : m.type == MetricType::kGauge ? "gauge"
                                          : "histogram");
}

void Registry::AddCollector(std::function<void(Writer&)> collector) {
  MutexLock l(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Expose() const {
  std::string out;
  Writer w(out);
  MutexLock l(mu_);
  for (const auto& f : counters_) {
    w.Header(f->name(), f->help(), "counter");
    for (const auto& [labels, c] : f->children()) w.Sample(f->name(), f->label_names(), labels, c->value());
  }
  for (const auto& f : gauges_) {
    w.Header(f->name(), f->help(), "gauge");
    for (const auto& [labels, g] : f->children()) w.Sample(f->name(), f->label_names(), labels, g->value());
  }
  for (const auto& f : histograms_) {
    w.Header(f->name(), f->help(), "histogram");
    for (const auto& [labels, h] : f->children()) {
      auto s = h->snapshot();
      for (size_t i = 0; i < s.cumulative.size(); ++i) {
        std::string le = i < f->bounds().size() ? FormatValue(f->bounds()[i]) : "+Inf";
        out += f->name() + "_bucket" + LabelSet(f->label_names(), labels, "le=\"" + le + "\"") + " " +
               FormatValue(static_cast<double>(s.cumulative[i])) + "\n";
      }
      out += f->name() + "_sum" + LabelSet(f->label_names(), labels) + " " + FormatValue(s.sum) + "\n";
      out += f->name() + "_count" + LabelSet(f->label_names(), labels) + " " +
             FormatValue(static_cast<double>(s.count)) + "\n";
    }
  }
  // Which families reached their series limit (their own names: a bounded label).
  Header(w, catalogue::kSeriesOverflow);
  auto overflow = [&](const auto& families) {
    for (const auto& f : families) {
      if (f->overflowed() > 0) {
        w.Sample(catalogue::kSeriesOverflow.name, catalogue::kSeriesOverflow.labels, {f->name()},
                 static_cast<double>(f->overflowed()));
      }
    }
  };
  overflow(counters_);
  overflow(gauges_);
  overflow(histograms_);
  for (const auto& c : collectors_) c(w);
  return out;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30};
  return b;
}

void AddProcessCollector(Registry& r) {
  r.AddCollector([](Writer& w) {
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    auto rp = line.rfind(')');
    std::istringstream rest(rp == std::string::npos ? "" : line.substr(rp + 2));
    std::vector<std::string> f;
    for (std::string t; rest >> t;) f.push_back(t);
    // After "pid (comm) ": field 3 is index 0. utime=14, stime=15, starttime=22, vsize=23, rss=24.
    if (f.size() > 22) {
      double cpu = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(ticks);
      Header(w, catalogue::kProcessCpu);
      w.Sample("process_cpu_seconds_total", {}, {}, cpu);
      Header(w, catalogue::kProcessVirtual);
      w.Sample("process_virtual_memory_bytes", {}, {}, std::stod(f[20]));
      Header(w, catalogue::kProcessResident);
      w.Sample("process_resident_memory_bytes", {}, {}, std::stod(f[21]) * static_cast<double>(page));
      std::ifstream uptime_f("/proc/stat");
      double btime = 0;
      for (std::string l; std::getline(uptime_f, l);) {
        if (l.rfind("btime ", 0) == 0) btime = std::stod(l.substr(6));
      }
      Header(w, catalogue::kProcessStart);
      w.Sample("process_start_time_seconds", {}, {}, btime + std::stod(f[19]) / static_cast<double>(ticks));
    }
    int fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') ++fds;
      }
      closedir(d);
      --fds;  // the directory handle itself
    }
    Header(w, catalogue::kProcessOpenFds);
    w.Sample("process_open_fds", {}, {}, fds);
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    Header(w, catalogue::kProcessMaxFds);
    w.Sample("process_max_fds", {}, {}, static_cast<double>(rl.rlim_cur));
  });
}

}  // namespace flovyn::metrics
