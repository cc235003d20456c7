// The eventhook plugin: its tables, the public ingest route that verifies and stores deliveries
// (202 after commit, 200 for a duplicate, 401 for a bad signature, 413 and 429 past a source's
// limits), the processor that routes them into work, and the REST routes that manage sources,
// routes and events.
#pragma once

#include <map>
#include <memory>

#include "engine/rest_support.h"
#include "event_processor.h"
#include "eventhook_store.h"
#include "flovyn/config/config.h"
#include "flovyn/core/mutex.h"
#include "flovyn/runtime/module.h"

namespace flovyn::plugins {

void AddEventhookSettings(config::Schema& schema);

// Token buckets per source, bounded: past `max_sources` buckets, idle (full) ones are dropped.
class SourceRates {
 public:
  explicit SourceRates(size_t max_sources = 10000) : max_(max_sources) {}
  bool Allow(const std::string& source, double per_second, double burst);
  size_t size() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
    double per_second = 0, burst = 0;
  };
  const size_t max_;
  mutable Mutex mu_;
  std::map<std::string, Bucket> buckets_ GUARDED_BY(mu_);
};

class EventhookPlugin final : public runtime::Module {
 public:
  std::string name() const override { return "eventhook"; }
  bool is_plugin() const override { return true; }
  std::vector<migrate::Migration> migrations() const override;
  void AddRoutes(http::Router& router) override;
  Status Start(const runtime::Context& ctx) override;
  void Stop() override;

 private:
  http::Response Ingest(const http::Request& req);
  http::Response CreateSource(const http::Request& req);
  http::Response ListSources(const http::Request& req);
  http::Response GetSource(const http::Request& req);
  http::Response EnableSource(const http::Request& req);
  http::Response DeleteSource(const http::Request& req);
  http::Response CreateRoute(const http::Request& req);
  http::Response ListRoutes(const http::Request& req);
  http::Response GetRoute(const http::Request& req);
  http::Response DeleteRoute(const http::Request& req);
  http::Response ListEvents(const http::Request& req);
  http::Response GetEvent(const http::Request& req);
  http::Response Reprocess(const http::Request& req);
  // The credential a new source keeps (sealed or hashed) and the one shown once.
  StatusOr<std::pair<std::string, std::string>> NewSecret(const std::string& tenant, const Verifier& v,
                                                          const nlohmann::json& body);
  StatusOr<std::string> HmacKey(const Source& s) const;

  engine::RestContext* rest_ = nullptr;
  std::unique_ptr<EventhookStore> store_;
  std::unique_ptr<EventhookMetrics> metrics_;
  std::unique_ptr<EventProcessor> processor_;
  SourceRates rates_;
  std::string seal_key_, hash_key_;  // empty: only sources without secrets can be made
  int64_t max_sources_ = 100;
};

}  // namespace flovyn::plugins
