#include "hostile.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <libpq-fe.h>

#include "flovyn/v1/flovyn.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "harness.h"

namespace flovyn::testing {

using Clock = std::chrono::steady_clock;

ProcStats ReadProc(pid_t pid) {
  ProcStats p;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) p.threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) p.rss_mb = std::stod(line.substr(6)) / 1024.0;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = all.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(all.substr(close + 2));
    std::string field;
    double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) p.cpu_s += std::stod(field) / ticks;
      if (i == 15) p.cpu_s += std::stod(field) / ticks;
    }
  }
  std::string out;
  RunCommand("ls /proc/" + std::to_string(pid) + "/fd 2>/dev/null | wc -l", &out);
  p.fds = out.empty() ? 0 : std::stoi(out);
  return p;
}

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

namespace {

void Frame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  uint32_t n = static_cast<uint32_t>(payload.size());
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  out += static_cast<char>((stream >> 24) & 0x7f);
  out += static_cast<char>((stream >> 16) & 0xff);
  out += static_cast<char>((stream >> 8) & 0xff);
  out += static_cast<char>(stream & 0xff);
  out += payload;
}

// HPACK literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2).
void Header(std::string& block, const std::string& name, const std::string& value) {
  block += '\0';
  block += static_cast<char>(name.size());
  block += name;
  block += static_cast<char>(value.size());
  block += value;
}

}  // namespace

H2Conn::H2Conn(int port) {
  fd_ = ConnectLoopback(port);
  if (fd_ < 0) return;
  out_ = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  Frame(out_, 0x4, 0, 0, "");    // our SETTINGS (defaults)
  Frame(out_, 0x4, 0x1, 0, "");  // ACK of the server's, which it sends first
  Flush();
}

H2Conn::~H2Conn() {
  if (fd_ >= 0) ::close(fd_);
}

uint32_t H2Conn::OpenStream(const std::string& path) {
  uint32_t id = next_;
  next_ += 2;
  std::string block;
  Header(block, ":method", "POST");
  Header(block, ":scheme", "http");
  Header(block, ":path", path);
  Header(block, ":authority", "localhost");
  Header(block, "content-type", "application/grpc");
  Header(block, "te", "trailers");
  Frame(out_, 0x1, 0x4, id, block);  // HEADERS, END_HEADERS, no END_STREAM: a message would follow
  return id;
}

void H2Conn::Reset(uint32_t stream) { Frame(out_, 0x3, 0, stream, std::string("\0\0\0\x8", 4)); }

bool H2Conn::Flush() {
  size_t off = 0;
  while (off < out_.size() && !broken_) {
    ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      broken_ = true;
      break;
    }
    off += static_cast<size_t>(n);
  }
  out_.clear();
  return !broken_;
}

void H2Conn::Drain() {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) broken_ = true;
    if (n <= 0) return;
  }
}

bool H2Conn::WaitClosed(std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  char buf[65536];
  while (Clock::now() < end) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

double HealthCallMs(int grpc_port, std::chrono::milliseconds deadline) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials(), args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse res;
  auto t0 = Clock::now();
  auto st = stub->Check(&ctx, req, &res);
  if (!st.ok()) return -1;
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

RapidResetResult RapidReset(int grpc_port, pid_t pid, std::chrono::milliseconds duration, long at_least_pairs,
                            bool until_shed) {
  RapidResetResult r;
  r.baseline_mb = ReadProc(pid).rss_mb;
  auto start = Clock::now();
  auto end = start + duration;
  auto next_sample = start;
  std::unique_ptr<H2Conn> c;
  const std::string path = "/flovyn.v1.WorkflowDispatch/StartWorkflow";
  // A slow machine sends fewer pairs in the time, and the server's memory grows slower: go on
  // until the volume asked for (and the shedding), up to four times the duration.
  auto more = [&] { return r.pairs < at_least_pairs || (until_shed && r.connections < 2); };
  while (Clock::now() < end || (more() && Clock::now() < start + 4 * duration)) {
    if (!c || !c->ok() || c->streams_opened() > (1u << 30)) {
      c = std::make_unique<H2Conn>(grpc_port);
      ++r.connections;
      if (!c->ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
    }
    for (int i = 0; i < 100; ++i) c->Reset(c->OpenStream(path));
    c->Flush();
    c->Drain();
    r.pairs += 100;
    if (Clock::now() >= next_sample) {
      ProcStats s = ReadProc(pid);
      r.peak.threads = std::max(r.peak.threads, s.threads);
      r.peak.rss_mb = std::max(r.peak.rss_mb, s.rss_mb);
      next_sample = Clock::now() + std::chrono::milliseconds(100);
    }
  }
  c.reset();
  ProcStats s = ReadProc(pid);
  r.peak.threads = std::max(r.peak.threads, s.threads);
  r.peak.rss_mb = std::max(r.peak.rss_mb, s.rss_mb);
  r.recovery_ms = HealthCallMs(grpc_port, std::chrono::milliseconds(1000));
  return r;
}

HalfOpenResult HalfOpen(int grpc_port, pid_t pid, long streams, int per_connection, std::chrono::milliseconds hold) {
  HalfOpenResult r;
  r.baseline_mb = ReadProc(pid).rss_mb;
  std::vector<std::unique_ptr<H2Conn>> conns;
  const std::string path = "/flovyn.v1.WorkflowDispatch/StartWorkflow";
  while (r.streams < streams) {
    auto c = std::make_unique<H2Conn>(grpc_port);
    if (!c->ok()) break;
    int n = static_cast<int>(std::min<long>(per_connection, streams - r.streams));
    for (int i = 0; i < n; ++i) c->OpenStream(path);
    if (!c->Flush()) break;
    r.streams += n;
    conns.push_back(std::move(c));
    if (conns.size() % 50 == 0) r.max_threads = std::max(r.max_threads, ReadProc(pid).threads);
  }
  r.connections = static_cast<int>(conns.size());
  auto end = Clock::now() + hold;
  while (Clock::now() < end) {
    for (auto& c : conns) c->Drain();
    ProcStats s = ReadProc(pid);
    r.max_threads = std::max(r.max_threads, s.threads);
    r.held_mb = std::max(r.held_mb, s.rss_mb);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  conns.clear();
  // The server notices the closed connections and frees their streams.
  auto settle = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < settle) {
    ProcStats s = ReadProc(pid);
    r.max_threads = std::max(r.max_threads, s.threads);
    r.after_mb = s.rss_mb;
    if (r.after_mb - r.baseline_mb < 20) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return r;
}

ExhaustionResult ExhaustDescriptors(int http_port, int grpc_port, pid_t pid, int connections,
                                    std::chrono::milliseconds hold) {
  ExhaustionResult r;
  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) {
    int fd = ConnectLoopback(i % 4 != 0 ? http_port : grpc_port);
    if (fd >= 0) fds.push_back(fd);
  }
  r.held = static_cast<int>(fds.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the server fill up
  double cpu0 = ReadProc(pid).cpu_s;
  auto t0 = Clock::now();
  std::this_thread::sleep_for(hold);
  r.cpu_while_full = (ReadProc(pid).cpu_s - cpu0) / std::chrono::duration<double>(Clock::now() - t0).count();
  for (int fd : fds) ::close(fd);
  auto released = Clock::now();
  while (Clock::now() - released < std::chrono::seconds(15)) {
    if (HealthCallMs(grpc_port, std::chrono::milliseconds(500)) >= 0) {
      r.grpc_back_ms = std::chrono::duration<double, std::milli>(Clock::now() - released).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  r.live_status_after = HttpGet(http_port, "/_/health/live", std::chrono::seconds(5)).status;
  return r;
}

namespace {

long Transactions(const std::string& url) {
  PGconn* c = PQconnectdb(url.c_str());
  long n = -1;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult* res = PQexec(c,
                           "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                           "WHERE datname = current_database()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) n = std::stol(PQgetvalue(res, 0, 0));
    PQclear(res);
  }
  PQfinish(c);
  return n;
}

double TxPerSecond(const std::string& url, std::chrono::milliseconds window) {
  long a = Transactions(url);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(window);
  long b = Transactions(url);
  // Each reading is itself one transaction: count only the server's.
  return static_cast<double>(b - a - 1) / std::chrono::duration<double>(Clock::now() - t0).count();
}

void Authorize(grpc::ClientContext& ctx, const sdk::ClientOptions& o) {
  if (!o.token.empty()) ctx.AddMetadata("authorization", "Bearer " + o.token);
  if (!o.tenant.empty()) ctx.AddMetadata("x-flovyn-tenant", o.tenant);
}

struct Tally {
  std::atomic<int> done{0}, refused{0};
  std::mutex mu;
  Clock::time_point last_done;
  void End(bool was_refused) {
    if (was_refused) ++refused;
    std::lock_guard<std::mutex> l(mu);
    last_done = Clock::now();
    ++done;
  }
};

class StreamReader final : public grpc::ClientReadReactor<v1::WorkNotification> {
 public:
  StreamReader(v1::WorkflowDispatch::Stub* stub, const sdk::ClientOptions& o, const std::string& queue, Tally& t)
      : tally_(t) {
    Authorize(ctx_, o);
    req_.set_queue(queue);
    stub->async()->SubscribeToNotifications(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&msg_);
  }
  void OnDone(const grpc::Status& s) override {
    tally_.End(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    finished_ = true;
  }
  grpc::ClientContext ctx_;
  std::atomic<bool> finished_{false};

 private:
  Tally& tally_;
  v1::SubscribeToNotificationsRequest req_;
  v1::WorkNotification msg_;
};

struct PollCall {
  grpc::ClientContext ctx;
  v1::PollTaskRequest req;
  v1::PollTaskResponse res;
};

}  // namespace

WaitersResult ManyWaiters(pid_t pid, const WaitersSpec& spec) {
  WaitersResult r;
  r.polls = spec.polls;
  r.streams = spec.streams;
  r.baseline_tx_per_s = TxPerSecond(spec.database_url, spec.window);

  sdk::Client worker(spec.client);
  v1::RegisterWorkerRequest reg;
  reg.set_name("abuse");
  reg.add_queues("idle");
  std::string worker_id;
  if (!worker.RegisterWorker(reg, &worker_id).ok()) return r;

  int total = spec.polls + spec.streams;
  int channels = (total + spec.per_channel - 1) / spec.per_channel;
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("flovyn.test.channel", i);
    chans.push_back(grpc::CreateCustomChannel(spec.client.target, grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::unique_ptr<v1::TaskExecution::Stub>> task_stubs;
  std::vector<std::unique_ptr<v1::WorkflowDispatch::Stub>> wf_stubs;
  for (auto& ch : chans) {
    task_stubs.push_back(v1::TaskExecution::NewStub(ch));
    wf_stubs.push_back(v1::WorkflowDispatch::NewStub(ch));
  }
  Tally polls, streams;
  std::vector<std::unique_ptr<PollCall>> calls;
  for (int i = 0; i < spec.polls; ++i) {
    auto c = std::make_unique<PollCall>();
    Authorize(c->ctx, spec.client);
    c->req.set_worker_id(worker_id);
    c->req.set_queue("idle");
    c->req.set_timeout_ms(60000);
    int ch = i / spec.per_channel;
    task_stubs[static_cast<size_t>(ch)]->async()->PollTask(&c->ctx, &c->req, &c->res, [&polls](grpc::Status s) {
      polls.End(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    });
    calls.push_back(std::move(c));
  }
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < spec.streams; ++i) {
    int ch = (spec.polls + i) / spec.per_channel;
    readers.push_back(
        std::make_unique<StreamReader>(wf_stubs[static_cast<size_t>(ch)].get(), spec.client, "idle", streams));
  }
  // Let every call reach the server and park.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  r.refused = polls.refused + streams.refused;
  r.held = ReadProc(pid);
  r.waiting_tx_per_s = TxPerSecond(spec.database_url, spec.window);
  {
    sdk::Client other(spec.other);
    v1::RegisterWorkerRequest o;
    o.set_name("other");
    std::string id;
    (void)other.RegisterWorker(o, &id);  // connects
    for (int i = 0; i < 5; ++i) {
      auto t0 = Clock::now();
      bool ok = other.RegisterWorker(o, &id).ok();
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      r.other_tenant_max_ms = std::max(r.other_tenant_max_ms, ok ? ms : 1e9);
    }
  }
  ProcStats after = ReadProc(pid);
  r.held.threads = std::max(r.held.threads, after.threads);
  r.held.rss_mb = std::max(r.held.rss_mb, after.rss_mb);

  auto t0 = Clock::now();
  ::kill(pid, SIGTERM);
  auto end = t0 + std::chrono::seconds(10);
  while (Clock::now() < end && polls.done + streams.done < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.released = polls.done + streams.done;
  if (r.released == total) {
    Clock::time_point last;
    {
      std::lock_guard<std::mutex> l1(polls.mu);
      last = polls.last_done;
    }
    r.polls_release_ms = std::chrono::duration<double, std::milli>(last - t0).count();
    {
      std::lock_guard<std::mutex> l2(streams.mu);
      last = std::max(last, streams.last_done);
    }
    r.release_ms = std::chrono::duration<double, std::milli>(last - t0).count();
  }
  // Anything still open is cancelled before its context goes away.
  for (auto& c : calls) c->ctx.TryCancel();
  for (auto& s : readers) s->ctx_.TryCancel();
  auto wait_end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < wait_end && polls.done + streams.done < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return r;
}

}  // namespace flovyn::testing
