// The eventhook plugin's tables: sources, routes and received events. Every statement is scoped
// by tenant except the processor's claim of due events, which spans tenants.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "event_rules.h"
#include "flovyn/db/pool.h"
#include "flovyn/db/transaction.h"

namespace flovyn::plugins {

struct SourceSpec {
  std::string slug;
  bool enabled = true;
  Verifier verifier;
  std::vector<std::string> idempotency_paths;
  std::optional<std::string> event_type_path;
  int max_body_bytes = 256 * 1024;
  double rate_per_second = 100;
  int burst = 200;
};

struct Source {
  std::string id, tenant_id;
  SourceSpec spec;
  std::string secret;  // sealed HMAC key, or the credential's hash; empty for none
  int64_t rejected = 0;
  std::string created_at;
};

struct RouteSpec {
  std::string source_id, name;
  bool enabled = true;
  nlohmann::json event_types = nlohmann::json::array();  // empty: any type
  nlohmann::json conditions = nlohmann::json::array();
  nlohmann::json action;
};

struct Route {
  std::string id, tenant_id;
  RouteSpec spec;
  std::string created_at;
};

struct StoredEvent {
  std::string id, tenant_id, source_id, label;  // label: "<tenant slug>/<source slug>" (metrics)
  std::optional<std::string> dedup_key, event_type;
  nlohmann::json headers;
  std::string body;
  std::string received_at, status;
  int64_t received_ms = 0;
  int attempts = 0;
  nlohmann::json actions;
  std::optional<std::string> error, processed_at;
};

struct EventFilter {
  std::optional<std::string> source_id, status;
  int limit = 50;
};

class EventhookStore {
 public:
  explicit EventhookStore(db::Pool& pool) : pool_(pool) {}

  StatusOr<Source> CreateSource(const std::string& tenant, const SourceSpec& spec, const std::string& secret);
  StatusOr<int64_t> CountSources(const std::string& tenant);
  StatusOr<std::vector<Source>> ListSources(const std::string& tenant);
  StatusOr<std::optional<Source>> GetSource(const std::string& tenant, const std::string& id);
  StatusOr<std::optional<Source>> SourceBySlug(const std::string& tenant, const std::string& slug);
  StatusOr<bool> SetSourceEnabled(const std::string& tenant, const std::string& id, bool enabled);
  StatusOr<bool> DeleteSource(const std::string& tenant, const std::string& id);
  Status CountRejected(const std::string& source_id);

  StatusOr<Route> CreateRoute(const std::string& tenant, const RouteSpec& spec);
  StatusOr<std::vector<Route>> ListRoutes(const std::string& tenant);
  StatusOr<std::optional<Route>> GetRoute(const std::string& tenant, const std::string& id);
  StatusOr<bool> DeleteRoute(const std::string& tenant, const std::string& id);
  // The source's enabled routes, oldest first (in the processor's transaction).
  static StatusOr<std::vector<Route>> RoutesOf(db::Tx& tx, const std::string& source_id);

  // The event's id and whether it is new (false: a delivery with the same dedup key exists).
  StatusOr<std::pair<std::string, bool>> InsertEvent(const Source& source, const std::optional<std::string>& dedup_key,
                                                     const std::optional<std::string>& event_type,
                                                     const nlohmann::json& headers, const std::string& body);
  StatusOr<std::vector<StoredEvent>> ListEvents(const std::string& tenant, const EventFilter& filter);
  StatusOr<std::optional<StoredEvent>> GetEvent(const std::string& tenant, const std::string& id);
  // Back to PENDING with its attempts reset, whatever it ended as.
  StatusOr<bool> Reprocess(const std::string& tenant, const std::string& id);

  // Claims up to `limit` due events (locked until `tx` ends, and due again `lease_ms` after
  // it commits when nothing records their end).
  static StatusOr<std::vector<StoredEvent>> Claim(db::Tx& tx, int limit, int64_t lease_ms);
  // Records an attempt's end (only while the claim of that attempt holds): DONE, FAILED, or
  // PENDING again in `retry_ms`.
  static Status Finish(db::Tx& tx, const StoredEvent& e, const std::string& status, int64_t retry_ms,
                       const nlohmann::json& actions, const std::optional<std::string>& error);

 private:
  db::Pool& pool_;
};

}  // namespace flovyn::plugins
