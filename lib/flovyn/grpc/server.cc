#include "flovyn/grpc/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <google/protobuf/descriptor.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"
#include "flovyn/grpc/call_interceptor.h"
#include "flovyn/grpc/tcp_stats.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::grpcsvc {

std::optional<trace::SpanContext> CallerContext(::grpc::ServerContextBase* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("traceparent");
  if (it == md.end()) return std::nullopt;
  return trace::SpanContext::Parse(std::string_view(it->second.data(), it->second.size()));
}

CallSpan::CallSpan(::grpc::ServerContextBase* ctx, std::string name)
    : span_(std::move(name), trace::Kind::kServer, CallerContext(ctx), false), scope_(span_.context()) {}

::grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return ::grpc::Status::OK;
  Status shown = ForClient(s);
  return {static_cast<::grpc::StatusCode>(GrpcCodeFor(shown.code())), shown.message()};
}

// ---------------------------------------------------------------- Listener

namespace {
unsigned long InodeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<unsigned long>(st.st_ino) : 0;
}
}  // namespace

Listener::Listener(const ServerLimits& limits, metrics::Registry* metrics)
    : max_connections_(limits.max_connections),
      shed_above_(limits.shed_above_bytes),
      receive_buffer_(limits.receive_buffer_bytes) {
  if (metrics != nullptr) {
    shed_ = metrics->CounterOf(metrics::catalogue::kConnectionsShed).With({"grpc"});
    refused_ = metrics->CounterOf(metrics::catalogue::kConnectionsRefused).With({"grpc"});
    accept_errors_ = metrics->CounterOf(metrics::catalogue::kAcceptErrors).With({"grpc"});
    open_ = metrics->GaugeOf(metrics::catalogue::kConnectionsOpen).With({"grpc"});
  }
}

Listener::~Listener() {
  Stop();
  if (fd_ >= 0) ::close(fd_);
  for (int w : wake_) {
    if (w >= 0) ::close(w);
  }
}

Status Listener::Bind(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("gRPC address needs host:port: " + address);
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return InvalidArgument("invalid gRPC address " + address);
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return Unavailable("cannot create the gRPC socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd_, 1024) != 0) {
    return Unavailable("cannot listen for gRPC on " + address + ": " + std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Unavailable("cannot create the listener's wake pipe");
  return Status::Ok();
}

void Listener::Start(std::unique_ptr<::grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { Loop(); });
  pthread_setname_np(thread_.native_handle(), "flovyn-grpc-acc");
}

void Listener::Stop() {
  if (!thread_.joinable()) return;
  char b = 1;
  [[maybe_unused]] auto n = ::write(wake_[1], &b, 1);
  thread_.join();
}

void Listener::Prune() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    // grpc++ closed it, or the number now names another file: that connection is gone.
    if (InodeOf(it->first) != it->second) {
      last_call_.erase(it->first);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = peer_fd_.begin(); it != peer_fd_.end();) {
    if (conns_.count(it->second) == 0)
      it = peer_fd_.erase(it);
    else
      ++it;
  }
  if (open_ != nullptr) open_->Set(static_cast<double>(conns_.size()));
}

namespace {
size_t ResidentBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<size_t>(resident) * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// The peer as grpc++ reports it (ServerContext::peer()).
std::string PeerName(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string("ipv4:") + host + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (a.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return std::string("ipv6:[") + host + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return {};
}

std::atomic<Listener*> active_listener{nullptr};
}  // namespace

void NoteHandledCall(::grpc::ServerContextBase* ctx) {
  if (Listener* l = active_listener.load(std::memory_order_acquire)) l->NoteCall(ctx->peer());
}

void Listener::NoteCall(const std::string& peer) {
  MutexLock l(conns_mu_);
  auto it = peer_fd_.find(peer);
  if (it != peer_fd_.end()) last_call_[it->second] = std::chrono::steady_clock::now();
}

void Listener::ShedLocked(bool over) {
  // Over the threshold: find the connection that sent the most since the last look while none
  // of its calls reached a handler (a flood of streams the transport cannot refuse, such as
  // rapid reset) and close it. Its calls end and their memory goes.
  auto now = std::chrono::steady_clock::now();
  int worst = -1;
  uint64_t worst_delta = 0;
  std::unordered_map<int, uint64_t> now_bytes;
  for (const auto& [fd, ino] : conns_) {
    if (InodeOf(fd) != ino) continue;
    uint64_t b = BytesReceived(fd);
    now_bytes[fd] = b;
    auto last = last_bytes_.find(fd);
    if (last == last_bytes_.end() || b < last->second) continue;
    auto call = last_call_.find(fd);
    if (call != last_call_.end() && now - call->second < std::chrono::milliseconds(250)) continue;
    if (b - last->second > worst_delta) {
      worst_delta = b - last->second;
      worst = fd;
    }
  }
  last_bytes_ = std::move(now_bytes);
  if (!over || worst < 0 || worst_delta < uint64_t{32} * 1024) return;  // nobody is flooding: leave everyone be
  ::shutdown(worst, SHUT_RDWR);
  last_bytes_.erase(worst);
  if (shed_ != nullptr) shed_->Inc();
  if (trim_due_ == std::chrono::steady_clock::time_point{}) {
    trim_due_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
  }
  spdlog::warn("gRPC: memory above {} MiB; closed the connection sending the most ({} KiB in the last 25 ms)",
               shed_above_ / (size_t{1024} * 1024), worst_delta / 1024);
}

void Listener::Maintain() {
  auto now = std::chrono::steady_clock::now();
  size_t open;
  {
    MutexLock l(conns_mu_);
    if (now - last_prune_ >= std::chrono::seconds(1)) {
      Prune();
      last_prune_ = now;
    }
    size_t rss = shed_above_ > 0 ? ResidentBytes() : 0;
    if (shed_above_ > 0 && rss > shed_above_ / 2) {
      ShedLocked(rss > shed_above_);  // from half the threshold, keep each connection's count
    } else {
      last_bytes_.clear();
    }
    open = conns_.size();
  }
  // Connections went away (a flood ended) or one was shed: give their memory back to the
  // system, which the allocator otherwise keeps for the process.
  bool due = trim_due_ != std::chrono::steady_clock::time_point{} && now >= trim_due_;
  if (open + 16 < peak_since_trim_ || due || now - last_trim_ > std::chrono::seconds(5)) {
    ::malloc_trim(0);
    peak_since_trim_ = open;
    last_trim_ = now;
    if (due) trim_due_ = {};
  }
}

void Listener::Loop() {
  int backoff_ms = 0;
  auto last_log = std::chrono::steady_clock::time_point{};
  auto last_maintain = std::chrono::steady_clock::now();
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_maintain >= std::chrono::milliseconds(25)) {
      Maintain();
      last_maintain = now;
    }
    if (backoff_ms > 0) {
      // Descriptors or memory ran out: wait before trying again rather than spin on a
      // listen queue that stays readable.
      pollfd w{wake_[0], POLLIN, 0};
      if (::poll(&w, 1, backoff_ms) > 0) return;
    } else {
      pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(p, 2, 25);
      if (n < 0 && errno == EINTR) continue;
      if (p[1].revents != 0) return;
      if (n == 0) continue;
    }
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED || e == EPROTO) {
        backoff_ms = 0;
        continue;
      }
      if (accept_errors_ != nullptr) accept_errors_->Inc();
      backoff_ms = backoff_ms == 0 ? 10 : std::min(backoff_ms * 2, 1000);
      auto t = std::chrono::steady_clock::now();
      if (t - last_log > std::chrono::seconds(10)) {
        last_log = t;
        spdlog::warn("gRPC listener cannot accept ({}); backing off", std::strerror(e));
      }
      continue;
    }
    backoff_ms = 0;
    {
      MutexLock l(conns_mu_);
      if (static_cast<int>(conns_.size()) >= max_connections_) Prune();
      if (static_cast<int>(conns_.size()) >= max_connections_) {
        ::close(c);
        if (refused_ != nullptr) refused_->Inc();
        auto t = std::chrono::steady_clock::now();
        if (t - last_log > std::chrono::seconds(10)) {
          last_log = t;
          spdlog::warn("gRPC listener at its limit of {} connections (GRPC__MAX_CONNECTIONS); closing new ones",
                       max_connections_);
        }
        continue;
      }
      conns_[c] = InodeOf(c);
      last_call_.erase(c);
      peer_fd_[PeerName(c)] = c;
      peak_since_trim_ = std::max(peak_since_trim_, conns_.size());
      if (open_ != nullptr) open_->Set(static_cast<double>(conns_.size()));
    }
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (receive_buffer_ > 0) ::setsockopt(c, SOL_SOCKET, SO_RCVBUF, &receive_buffer_, sizeof receive_buffer_);
    ::grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
    params.listener_fd = fd_;
    params.fd = c;
    acceptor_->HandleNewConnection(&params);
  }
}

// ---------------------------------------------------------------- Server

Server::Server(std::string address, const lifecycle::StageCell& stage, health::Monitor& monitor,
               metrics::Registry* metrics, ServerLimits limits)
    : address_(std::move(address)), metrics_(metrics), limits_(limits), stage_(stage), monitor_(monitor) {}

Server::~Server() {
  if (active_listener.load() == listener_.get()) active_listener.store(nullptr);
  if (listener_) listener_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void Server::AddService(::grpc::Service* service, std::string full_name) {
  services_.emplace_back(service, std::move(full_name));
}

Status Server::Start() {
  std::set<std::string> names;
  for (auto& [svc, name] : services_) names.insert(name);
  names.insert("grpc.health.v1.Health");
  std::set<std::string> methods;
  for (const auto& name : names) {
    const auto* d = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    for (int i = 0; d != nullptr && i < d->method_count(); ++i) methods.insert("/" + name + "/" + d->method(i)->name());
  }
  health_ = std::make_unique<HealthService>(stage_, monitor_, names, limits_.max_health_watches);

  listener_ = std::make_unique<Listener>(limits_, metrics_);
  if (Status s = listener_->Bind(address_); !s.ok()) return s;

  ::grpc::ServerBuilder b;
  auto acceptor = b.experimental().AddExternalConnectionAcceptor(
      ::grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, ::grpc::InsecureServerCredentials());
  b.RegisterService(health_.get());
  for (auto& [svc, name] : services_) b.RegisterService(svc);
  b.SetMaxReceiveMessageSize(limits_.max_receive_message_bytes);
  ::grpc::ResourceQuota quota("flovyn-grpc");
  quota.Resize(limits_.memory_quota_bytes);
  quota.SetMaxThreads(limits_.max_sync_threads);
  b.SetResourceQuota(quota);
  auto ms = [](std::chrono::milliseconds d) { return static_cast<int>(d.count()); };
  b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams);
  b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ms(limits_.max_connection_idle));
  b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(limits_.max_connection_age));
  b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, ms(limits_.max_connection_age_grace));
  b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, ms(limits_.handshake_timeout));
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(limits_.keepalive_time));
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(limits_.keepalive_timeout));
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, ms(limits_.min_client_ping_interval));
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  std::vector<std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewCallInterceptorFactory(metrics_, std::move(methods), live_calls_));
  b.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = b.BuildAndStart();
  if (!server_) return Unavailable("cannot start the gRPC server on " + address_);
  listener_->Start(std::move(acceptor));
  active_listener.store(listener_.get(), std::memory_order_release);
  return Status::Ok();
}

void Server::Shutdown(std::chrono::system_clock::time_point deadline) {
  active_listener.store(nullptr, std::memory_order_release);
  if (listener_) listener_->Stop();
  if (!server_) return;
  // grpc++ completes its shutdown only once every call has ended and every client connection
  // has closed; a client that keeps an idle connection open after the GOAWAY would hold the
  // drain until the deadline. Once no call of ours is live, the connections are all that is
  // left, so they are cut.
  Mutex mu;
  CondVar done_cv;
  bool done = false;
  std::thread cutter([&] {
    MutexLock l(mu);
    while (!done && std::chrono::system_clock::now() < deadline) {
      if (live_calls_.load(std::memory_order_acquire) == 0) {
        grpc_server_cancel_all_calls(server_->c_server());
        return;
      }
      done_cv.WaitUntil(mu, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
    }
  });
  server_->Shutdown(deadline);
  {
    MutexLock l(mu);
    done = true;
  }
  done_cv.NotifyAll();
  cutter.join();
  server_->Wait();
}

bool ListenerAnswers(const std::string& target, std::chrono::steady_clock::time_point deadline) {
  // A channel of its own (a fresh connection), so the check proves the listener still accepts.
  ::grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("flovyn.self_check",
              static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count() & 0x7fffffff));
  auto channel = ::grpc::CreateCustomChannel(target, ::grpc::InsecureChannelCredentials(), args);
  auto stub = ::grpc::health::v1::Health::NewStub(channel);
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                          deadline - std::chrono::steady_clock::now()));
  ctx.set_wait_for_ready(false);
  ::grpc::health::v1::HealthCheckRequest req;
  ::grpc::health::v1::HealthCheckResponse res;
  ::grpc::Status st = stub->Check(&ctx, req, &res);
  // Any answer from the server counts; only a connection that never completes a call fails.
  return st.ok() || (st.error_code() != ::grpc::StatusCode::UNAVAILABLE &&
                     st.error_code() != ::grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace flovyn::grpcsvc
