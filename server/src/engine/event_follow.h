// Live history: GET .../workflows/{id}/events?follow=true answers with Server-Sent Events, one
// per history event ("id: <sequence>", "event: <type>", "data: <the event as JSON>"), starting
// after the sequence the client names (Last-Event-ID or ?after=) and following new events as
// they are appended, until the workflow's terminal event has been sent. Each open stream takes a
// slot (engine.max_event_streams); a stream asks the store for new events every
// engine.event_stream_poll_ms on the HTTP handler threads and holds no thread in between.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "engine/store.h"
#include "flovyn/http/message.h"

namespace flovyn::engine {

struct FollowOptions {
  int max_streams = 1000;
  std::chrono::milliseconds poll{500};
  std::chrono::milliseconds keepalive{15000};  // a comment line when nothing else was sent
};

class FollowSlots {
 public:
  explicit FollowSlots(FollowOptions o) : options_(o) {}
  bool TryTake() {
    if (open_.fetch_add(1) >= options_.max_streams) {
      open_.fetch_sub(1);
      return false;
    }
    return true;
  }
  void Give() { open_.fetch_sub(1); }
  const FollowOptions& options() const { return options_; }

 private:
  FollowOptions options_;
  std::atomic<int> open_{0};
};

// A stream over one execution's history; holds its slot until destroyed.
class EventFollow final : public http::BodyStream {
 public:
  EventFollow(Store& store, FollowSlots& slots, TenantId tenant, ExecutionId execution, int64_t after);
  ~EventFollow() override { slots_.Give(); }
  std::string Next(bool& end) override;

 private:
  Store& store_;
  FollowSlots& slots_;
  TenantId tenant_;
  ExecutionId execution_;
  int64_t after_;
  std::chrono::steady_clock::time_point last_sent_;
};

// A sequence number from a query parameter or Last-Event-ID: INVALID_ARGUMENT unless digits.
StatusOr<int64_t> SequenceParam(std::string_view s);

// The Server-Sent Events response for a follow request, or the error to answer instead
// (404 unknown execution, 400 bad Last-Event-ID, 503 naming engine.max_event_streams).
http::Response FollowEvents(Store& store, FollowSlots& slots, const TenantId& tenant, const ExecutionId& execution,
                            const http::Request& req);

}  // namespace flovyn::engine
