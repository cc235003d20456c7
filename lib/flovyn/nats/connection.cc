#include "flovyn/nats/connection.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

namespace flovyn::nats {

Connection::Connection(Options options) : options_(std::move(options)) {}

Connection::~Connection() {
  for (auto* s : subs_) natsSubscription_Destroy(s);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

void Connection::OnReconnected(natsConnection*, void* self) {
  static_cast<Connection*>(self)->reconnects_++;
  spdlog::info("NATS reconnected");
}

Status Connection::Start() {
  if (natsOptions_Create(&opts_) != NATS_OK) return Internal("cannot create NATS options");
  natsStatus s = natsOptions_SetURL(opts_, options_.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts_, options_.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts_, options_.reconnect_wait.count());
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts_, options_.ping_interval.count());
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts_, 2);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts_, 2000);
  // Our own publications are delivered locally already; do not receive them back.
  if (s == NATS_OK) s = natsOptions_SetNoEcho(opts_, true);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts_, &Connection::OnReconnected, this);
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(
        opts_, true, [](natsConnection*, void*) { spdlog::info("NATS connected"); }, nullptr);
  }
  if (s != NATS_OK) return InvalidArgument(std::string("invalid NATS options: ") + natsStatus_GetText(s));
  s = natsConnection_Connect(&conn_, opts_);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("NATS not reachable at startup; connecting in the background");
    return Status::Ok();
  }
  if (s != NATS_OK) return Unavailable(std::string("NATS: ") + natsStatus_GetText(s));
  return Status::Ok();
}

bool Connection::connected() const {
  return conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

std::string Connection::state() const {
  if (conn_ == nullptr) return "not started";
  switch (natsConnection_Status(conn_)) {
    case NATS_CONN_STATUS_CONNECTED:
      return "connected";
    case NATS_CONN_STATUS_CONNECTING:
      return "not connected (connecting)";
    case NATS_CONN_STATUS_RECONNECTING:
      return "not connected (reconnecting)";
    case NATS_CONN_STATUS_DISCONNECTED:
      return "not connected (disconnected)";
    case NATS_CONN_STATUS_CLOSED:
      return "not connected (closed)";
    default:
      return "draining";
  }
}

health::CheckResult Connection::Check() const {
  health::CheckResult r;
  r.up = connected();  // nats.c pings in the background; its connection state is the check
  if (!r.up) r.error = state();
  return r;
}

Status Connection::Publish(const std::string& subject, const std::string& data) {
  if (conn_ == nullptr) return Unavailable("NATS not started");
  natsStatus s = natsConnection_Publish(conn_, subject.c_str(), data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return Unavailable(std::string("NATS publish: ") + natsStatus_GetText(s));
  return Status::Ok();
}

Status Connection::Subscribe(const std::string& subject, MessageFn fn) {
  if (conn_ == nullptr) return Unavailable("NATS not started");
  handlers_.push_back(std::make_unique<MessageFn>(std::move(fn)));
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(
      &sub, conn_, subject.c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        auto* f = static_cast<MessageFn*>(closure);
        std::string subj = natsMsg_GetSubject(msg);
        std::string data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
        natsMsg_Destroy(msg);
        (*f)(subj, data);
      },
      handlers_.back().get());
  if (s != NATS_OK) return Unavailable(std::string("NATS subscribe: ") + natsStatus_GetText(s));
  subs_.push_back(sub);
  return Status::Ok();
}

void Connection::Drain(std::chrono::milliseconds timeout) {
  if (conn_ == nullptr) return;
  if (connected()) {
    natsConnection_FlushTimeout(conn_, timeout.count());
  }
  natsConnection_Close(conn_);
}

}  // namespace flovyn::nats
