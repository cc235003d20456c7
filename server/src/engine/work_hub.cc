#include "engine/work_hub.h"

#include <algorithm>

namespace flovyn::engine {

std::string WorkKey(const std::string& tenant_id, const std::string& queue, WorkKind kind) {
  return (kind == WorkKind::kWorkflow ? "w|" : "t|") + tenant_id + "|" + queue;
}

std::string AnyKindKey(const std::string& tenant_id, const std::string& queue) {
  return "*|" + tenant_id + "|" + queue;
}

std::shared_ptr<WorkHub::Slot> WorkHub::SlotFor(const std::string& key) {
  auto& s = slots_[key];
  if (!s) s = std::make_shared<Slot>();
  return s;
}

uint64_t WorkHub::Version(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  return SlotFor(key)->version;
}

void WorkHub::Wait(const std::string& key, uint64_t seen, Clock::time_point deadline) {
  std::unique_lock<std::mutex> l(mu_);
  auto slot = SlotFor(key);
  ++waiting_;
  slot->cv.wait_until(l, deadline, [&] { return draining_ || slot->version != seen; });
  --waiting_;
}

bool WorkHub::Take(const std::string& key, Clock::time_point deadline) {
  std::unique_lock<std::mutex> l(mu_);
  auto slot = SlotFor(key);
  ++waiting_;
  bool took = false;
  if (slot->cv.wait_until(l, deadline, [&] { return draining_ || slot->tokens > 0; }) && slot->tokens > 0) {
    --slot->tokens;
    took = true;
  }
  --waiting_;
  return took;
}

void WorkHub::Notify(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  if (key == "*") {  // everything may have changed (e.g. notifications were missed)
    for (auto& [k, s] : slots_) {
      ++s->version;
      s->tokens = std::min(s->tokens + 1, kMaxTokens);
      s->cv.notify_all();
    }
    return;
  }
  auto slot = SlotFor(key);
  ++slot->version;
  slot->tokens = std::min(slot->tokens + 1, kMaxTokens);
  // One unit of news wakes one poller; a poller that claims work passes the news on (see
  // LongPoll), so a burst reaches as many pollers as it has work for, without a herd.
  if (key[0] == '*') {
    slot->cv.notify_all();  // notification streams: every subscriber hears it
  } else {
    slot->cv.notify_one();
  }
  if (key.size() > 2 && key[1] == '|' && key[0] != '*') {
    auto any = SlotFor("*" + key.substr(1));
    ++any->version;
    any->cv.notify_all();
  }
}

void WorkHub::Drain() {
  std::lock_guard<std::mutex> l(mu_);
  draining_ = true;
  for (auto& [k, s] : slots_) s->cv.notify_all();
}

bool WorkHub::draining() const {
  std::lock_guard<std::mutex> l(mu_);
  return draining_;
}

int WorkHub::waiting() const {
  std::lock_guard<std::mutex> l(mu_);
  return waiting_;
}

}  // namespace flovyn::engine
