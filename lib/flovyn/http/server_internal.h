// The HTTP server's insides: its state (Server::Impl) and one connection (Session: reading,
// dispatching, writing, streamed bodies). server.cc accepts, drains and stops on top of them.
// Not a public header.
#pragma once

#include <array>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "flovyn/core/mutex.h"
#include "flovyn/http/invoke.h"
#include "flovyn/http/server.h"
#include "flovyn/metrics/catalogue.h"
#include "flovyn/metrics/registry.h"

namespace flovyn::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

// The method as a metrics label: the standard ones, anything else "other", so invented methods
// cannot create series.
inline const char* MethodLabel(std::string_view m) {
  for (const char* known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    if (m == known) return known;
  }
  return "other";
}

class Server::Impl {
 public:
  Impl(ServerOptions o, const Router& r, std::function<bool()> open, metrics::Registry* reg)
      : opt(std::move(o)), router(r), api_open(std::move(open)) {
    if (reg != nullptr) {
      requests = &reg->CounterOf(metrics::catalogue::kHttpRequests);
      latency = &reg->HistogramOf(metrics::catalogue::kHttpRequestDuration);
      refused = reg->CounterOf(metrics::catalogue::kConnectionsRefused).With({opt.listener_label});
      accept_errors = reg->CounterOf(metrics::catalogue::kAcceptErrors).With({opt.listener_label});
      open_connections = reg->GaugeOf(metrics::catalogue::kConnectionsOpen).With({opt.listener_label});
    }
  }

  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < std::max(n, 1); ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }
  void DoAccept();
  void Register(const std::shared_ptr<Session>& s);
  // The sessions still alive, as owners (taken under sessions_mu, which the caller must not hold).
  std::vector<std::shared_ptr<Session>> LiveSessions() EXCLUDES(sessions_mu);
  void Unregister(Session* s);
  void RequestBegun() { in_flight.fetch_add(1, std::memory_order_relaxed); }
  void RequestDone() {
    if (in_flight.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    MutexLock l(idle_mu);  // a waiter checks in_flight under this lock before it sleeps
    idle_cv.NotifyAll();
  }

  ServerOptions opt;
  const Router& router;
  std::function<bool()> api_open;
  metrics::Family<metrics::Counter>* requests = nullptr;
  metrics::HistogramFamily* latency = nullptr;
  metrics::Counter* refused = nullptr;
  metrics::Counter* accept_errors = nullptr;
  metrics::Gauge* open_connections = nullptr;
  int backoff_ms = 0;  // accept back-off after EMFILE and the like; accept handler only
  std::chrono::steady_clock::time_point last_accept_log;

  Mutex sessions_mu;
  std::map<Session*, std::weak_ptr<Session>> sessions GUARDED_BY(sessions_mu);

  Mutex idle_mu;
  CondVar idle_cv;
  std::atomic<int> in_flight{0};

  // Declared after the session registry: destroying the contexts destroys sessions.
  // One context per I/O thread, each run by its own thread only: a connection lives on one of
  // them (given out in turn), so its work needs no strand and never wakes another thread.
  std::vector<std::unique_ptr<net::io_context>> iocs = MakeContexts(opt.io_threads);
  std::vector<net::executor_work_guard<net::io_context::executor_type>> io_work;
  size_t next_ioc = 0;                   // accept handler only
  net::io_context& ioc = *iocs.front();  // the acceptor's
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_timer{ioc};
  net::io_context handler_ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> handler_work;
  std::vector<std::thread> io_threads;
  std::vector<std::thread> handler_threads;
  std::vector<std::shared_ptr<std::atomic<bool>>> handler_done;
  std::atomic<bool> draining{false};
  int bound_port = 0;
  // Whether a connection should end after its current response.
  bool Closing() const { return draining || (opt.drain != nullptr && opt.drain->ShouldClose()); }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server::Impl& srv, tcp::socket socket) : srv_(srv), stream_(std::move(socket)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
  }
  ~Session() { srv_.Unregister(this); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Runs on the session's executor (its I/O thread).
  void CloseIfIdle() { busy_ ? void(close_after_ = true) : Close(); }
  void ForceClose() { Close(); }
  bool busy() const { return busy_; }
  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void Read() {
    // Idle connections end once the listener stops; a drain manager's request is met in Send.
    if (srv_.draining) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opt.max_header_bytes));
    parser_->body_limit(srv_.opt.max_body_bytes);
    stream_.expires_after(srv_.opt.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void BeginRequest() {
    busy_ = true;
    start_ = std::chrono::steady_clock::now();
    srv_.RequestBegun();
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return Close();
    }
    if (ec) return OnParseError(ec);
    BeginRequest();
    auto& msg = parser_->get();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    method_ = MethodLabel(std::string_view(msg.method_string().data(), msg.method_string().size()));
    route_ = "unmatched";
    if (auto refusal = Unframeable(msg)) return Send(std::move(*refusal));
    Request req = ToRequest(msg);
    head_ = req.method == "HEAD";
    Match m = srv_.router.Find(req.method, req.path);
    if (m.route == nullptr) {
      if (m.path_known) return Send(ErrorResponse(405, "METHOD_NOT_ALLOWED", "method not allowed for this path"));
      return Send(ErrorResponse(404, "NOT_FOUND", "no route for this path"));
    }
    route_ = m.route->pattern;
    if (!m.bad_param.empty()) {
      return Send(
          ErrorResponse(400, "INVALID_ARGUMENT", "path parameter '" + m.bad_param + "' contains a control character"));
    }
    if (!m.route->options.before_running && !srv_.api_open()) {
      Response r = ErrorResponse(503, "UNAVAILABLE", "server is not ready to serve requests");
      r.With("Retry-After", "1");
      return Send(std::move(r));
    }
    req.path_params = std::move(m.params);
    Dispatch(*m.route, std::move(req));
  }

  // A message the parser refused: answered (413, 431 or 400) and the connection closed.
  void OnParseError(beast::error_code ec) {
    bool parse_error = ec.category() == bhttp::make_error_code(bhttp::error::body_limit).category() &&
                       ec != bhttp::error::partial_message;
    if (!parse_error) return Close();  // socket failure or a client gone mid-message
    BeginRequest();
    close_after_ = true;
    unread_body_ = true;
    method_ = "other";
    route_ = "unmatched";
    version_ = 11;
    if (ec == bhttp::error::body_limit) {
      return Send(ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                                "request body exceeds " + std::to_string(srv_.opt.max_body_bytes) + " bytes"));
    }
    if (ec == bhttp::error::header_limit)
      return Send(ErrorResponse(431, "HEADERS_TOO_LARGE", "request headers are too large"));
    Send(ErrorResponse(400, "BAD_REQUEST", "malformed HTTP request"));
  }

  // A request whose end cannot be told from the next one's start is refused, and the
  // connection closed after the answer.
  std::optional<Response> Unframeable(const bhttp::request<bhttp::string_body>& msg) {
    // RFC 9112 6.1 and 6.3: a transfer coding other than chunked cannot be framed.
    if (auto te = msg.find(bhttp::field::transfer_encoding);
        te != msg.end() && !IsChunkedCoding(std::string_view(te->value().data(), te->value().size()))) {
      close_after_ = true;
      unread_body_ = true;
      return ErrorResponse(400, "BAD_REQUEST", "Transfer-Encoding other than chunked is not supported");
    }
    // RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host header.
    if (version_ >= 11 && msg.count(bhttp::field::host) != 1) {
      close_after_ = true;
      return ErrorResponse(400, "BAD_REQUEST", "HTTP/1.1 requests need exactly one Host header");
    }
    return std::nullopt;
  }

  Request ToRequest(bhttp::request<bhttp::string_body>& msg) {
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = ParseQuery(std::string_view(req.target).substr(q + 1));
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.remote_address = remote_;
    return req;
  }

  // Runs the route's handler (inline, or on the handler threads); its answer comes back to this
  // session's executor once.
  void Dispatch(const Route& route, Request req) {
    auto self = shared_from_this();
    auto once = std::make_shared<std::atomic<bool>>(false);
    // dispatch: an inline handler answering at once is already on this session's executor, so
    // its answer is written without another trip through the scheduler.
    Respond respond = [self, once](Response r) {
      if (once->exchange(true)) return;
      net::dispatch(self->executor(), [self, r = std::move(r)]() mutable { self->Send(std::move(r)); });
    };
    auto run = [route = &route, respond, r = std::move(req)]() mutable { InvokeRoute(*route, std::move(r), respond); };
    if (route.options.run_inline) {
      run();
    } else {
      net::post(srv_.handler_ioc, std::move(run));
    }
  }

  // Writes the response: a head of our own making (status line, the handler's headers, then
  // the framing, which is ours alone) and the body, gathered into one write.
  void Send(Response r) {
    if (r.stream) return StartStream(std::move(r));
    status_ = r.status;
    bool keep = keep_alive_ && !close_after_ && !srv_.Closing();
    bool bodiless = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    head_buf_.assign(version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    head_buf_.append(std::to_string(r.status)).append(" ").append(reason.data(), reason.size()).append("\r\n");
    bool typed = false;
    for (const auto& [k, v] : r.headers) {
      if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Connection") ||
          beast::iequals(k, "Transfer-Encoding")) {
        continue;
      }
      typed = typed || beast::iequals(k, "Content-Type");
      head_buf_.append(k).append(": ").append(v).append("\r\n");
    }
    if (!bodiless) {
      if (!typed) head_buf_.append("Content-Type: ").append(r.content_type).append("\r\n");
      head_buf_.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n");
    }
    if (!keep) {
      head_buf_.append("Connection: close\r\n");
    } else if (version_ == 10) {
      head_buf_.append("Connection: keep-alive\r\n");
    }
    head_buf_.append("\r\n");
    body_buf_ = head_ || bodiless ? std::string() : std::move(r.body);
    head_ = false;
    stream_.expires_after(srv_.opt.read_timeout);
    std::array<net::const_buffer, 2> out{net::buffer(head_buf_), net::buffer(body_buf_)};
    net::async_write(stream_, out, [self = shared_from_this(), keep](beast::error_code ec, size_t) {
      // An idle connection keeps no response body (the head's buffer is reused).
      std::string().swap(self->body_buf_);
      self->OnWrite(ec, !keep);
    });
  }

  // A streamed response: the head without a length (the body ends when the connection closes),
  // then what the stream yields, asked for on the handler threads (the I/O thread never blocks).
  void StartStream(Response r) {
    status_ = r.status;
    body_stream_ = std::move(r.stream);
    close_after_ = true;
    stream_timer_.emplace(stream_.get_executor());
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(reason.data(), reason.size()) +
                       "\r\nContent-Type: " + r.content_type + "\r\nCache-Control: no-cache\r\nConnection: close\r\n";
    for (const auto& [k, v] : r.headers) head.append(k).append(": ").append(v).append("\r\n");
    head += "\r\n";
    WriteStream(std::move(head), false, true);
    WatchPeer(std::make_shared<std::array<char, 512>>());
  }
  // A read kept pending while streaming: it completes when the client closes (or sends
  // anything, which is discarded), so a departed client frees its stream at once.
  void WatchPeer(const std::shared_ptr<std::array<char, 512>>& buf) {
    stream_.socket().async_read_some(net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, size_t) {
      if (!self->body_stream_) return;
      if (ec) return self->EndStream({});
      self->WatchPeer(buf);
    });
  }
  void WriteStream(std::string data, bool end, bool poll_now) {
    auto buf = std::make_shared<std::string>(std::move(data));
    stream_.expires_after(srv_.opt.read_timeout);
    net::async_write(stream_, net::buffer(*buf),
                     [self = shared_from_this(), buf, end, poll_now](beast::error_code ec, size_t) {
                       if (ec || end) return self->EndStream(ec);
                       poll_now ? self->PollStream() : self->ScheduleStream();
                     });
  }
  void ScheduleStream() {
    if (srv_.Closing() || closed_) return EndStream({});
    stream_timer_->expires_after(body_stream_->interval());
    stream_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->EndStream({});
      self->PollStream();
    });
  }
  void PollStream() {
    if (srv_.Closing() || closed_) return EndStream({});
    net::post(srv_.handler_ioc, [self = shared_from_this(), body = body_stream_] {
      bool end = false;
      std::string chunk;
      try {
        chunk = body->Next(end);
      } catch (const std::exception& e) {
        spdlog::warn("response stream failed: {}", e.what());
        end = true;
      }
      net::post(self->executor(), [self, chunk = std::move(chunk), end]() mutable {
        if (!chunk.empty()) return self->WriteStream(std::move(chunk), end, false);
        end ? self->EndStream({}) : self->ScheduleStream();
      });
    });
  }
  void EndStream(beast::error_code ec) {
    if (!body_stream_) return;
    body_stream_.reset();
    stream_timer_->cancel();
    OnWrite(ec, true);
  }

  // After answering a request we did not read to the end (413, 400), half-close and discard
  // what the client is still sending for a moment, so it reads our answer instead of a reset.
  void LingeringClose() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    auto buf = std::make_shared<std::array<char, 8192>>();
    auto self = shared_from_this();
    stream_.async_read_some(net::buffer(*buf), [self, buf](beast::error_code e, size_t) { self->Drain(e, buf); });
  }
  void Drain(beast::error_code ec, const std::shared_ptr<std::array<char, 8192>>& buf) {
    if (ec) return Close();
    stream_.async_read_some(net::buffer(*buf),
                            [self = shared_from_this(), buf](beast::error_code e, size_t) { self->Drain(e, buf); });
  }

  void OnWrite(beast::error_code ec, bool close) {
    if (srv_.requests != nullptr) {
      // The series of the last request is kept: a connection mostly repeats the same request.
      if (method_ != counted_method_ || route_ != counted_route_ || status_ != counted_status_) {
        std::string method(method_), route(route_);
        counted_ = srv_.requests->With({method, route, std::to_string(status_)});
        timed_ = srv_.latency->With({method, route});
        counted_method_ = method_;
        counted_route_ = route_;
        counted_status_ = status_;
      }
      counted_->Inc();
      timed_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    busy_ = false;
    srv_.RequestDone();
    if (ec) return Close();
    if (unread_body_) return LingeringClose();
    if (close || close_after_) return Close();
    Read();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  Server::Impl& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<BodyStream> body_stream_;        // a streamed response in progress
  std::optional<net::steady_timer> stream_timer_;  // its next poll
  std::string remote_;
  std::string head_buf_, body_buf_;       // the response being written
  const char* method_ = "other";          // MethodLabel's
  std::string_view route_ = "unmatched";  // the route's pattern (the router outlives us) or a literal
  int status_ = 0;
  // The metric series of the last request counted.
  const char* counted_method_ = nullptr;
  std::string_view counted_route_;
  int counted_status_ = 0;
  metrics::Counter* counted_ = nullptr;
  metrics::Histogram* timed_ = nullptr;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool busy_ = false;
  bool close_after_ = false;
  bool closed_ = false;
  bool unread_body_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace flovyn::http
