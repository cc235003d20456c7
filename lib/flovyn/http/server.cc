#include "flovyn/http/server_internal.h"

namespace flovyn::http {

void Server::Impl::Register(const std::shared_ptr<Session>& s) {
  MutexLock l(sessions_mu);
  sessions[s.get()] = s;
  if (open_connections != nullptr) open_connections->Set(static_cast<double>(sessions.size()));
}

std::vector<std::shared_ptr<Session>> Server::Impl::LiveSessions() {
  // Released after the lock: the last reference to a session may be one of these (its handler
  // finished meanwhile on its own thread), and its destructor takes sessions_mu to unregister.
  std::vector<std::shared_ptr<Session>> live;
  MutexLock l(sessions_mu);
  for (auto& [p, w] : sessions) {
    if (auto s = w.lock()) live.push_back(std::move(s));
  }
  return live;
}

void Server::Impl::Unregister(Session* s) {
  MutexLock l(sessions_mu);
  sessions.erase(s);
  if (open_connections != nullptr) open_connections->Set(static_cast<double>(sessions.size()));
}

namespace {
// Out of descriptors or memory: the listen queue stays readable, so accepting again at once
// would spin.
bool ResourceExhausted(const beast::error_code& ec) {
  return ec == net::error::no_descriptors || ec == net::error::no_buffer_space || ec == net::error::no_memory ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

// Answers a connection over the limit without a session: one small write, then close.
void RefuseConnection(tcp::socket& socket) {
  static const std::string kBusy = [] {
    std::string body =
        R"({"error":"too many open connections (the limit is HTTP__MAX_CONNECTIONS); retry later","code":"UNAVAILABLE"})";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Retry-After: 1\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  beast::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(kBusy), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}
}  // namespace

void Server::Impl::DoAccept() {
  net::io_context& home = *iocs[next_ioc++ % iocs.size()];
  acceptor.async_accept(home, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec && ResourceExhausted(ec)) {
      if (accept_errors != nullptr) accept_errors->Inc();
      backoff_ms = backoff_ms == 0 ? 10 : std::min(backoff_ms * 2, 1000);
      auto now = std::chrono::steady_clock::now();
      if (now - last_accept_log > std::chrono::seconds(10)) {
        last_accept_log = now;
        spdlog::warn("HTTP listener on port {} cannot accept ({}); backing off", bound_port, ec.message());
      }
      accept_timer.expires_after(std::chrono::milliseconds(backoff_ms));
      accept_timer.async_wait([this](beast::error_code tec) {
        if (!tec && acceptor.is_open()) DoAccept();
      });
      return;
    }
    backoff_ms = 0;
    if (!ec) {
      size_t open;
      {
        MutexLock l(sessions_mu);
        open = sessions.size();
      }
      if (open >= static_cast<size_t>(opt.max_connections)) {
        RefuseConnection(socket);
        if (refused != nullptr) refused->Inc();
      } else {
        auto s = std::make_shared<Session>(*this, std::move(socket));
        Register(s);
        s->Start();
      }
    }
    DoAccept();
  });
}

Server::Server(ServerOptions options, const Router& router, std::function<bool()> api_open, metrics::Registry* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, std::move(api_open), metrics)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  auto& i = *impl_;
  beast::error_code ec;
  auto addr = net::ip::make_address(i.opt.bind_address, ec);
  if (ec) return InvalidArgument("invalid bind address " + i.opt.bind_address);
  tcp::endpoint ep(addr, static_cast<unsigned short>(i.opt.port));
  i.acceptor.open(ep.protocol(), ec);
  if (!ec) i.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(ep, ec);
  if (!ec) i.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + i.opt.bind_address + ":" + std::to_string(i.opt.port) + ": " +
                       ec.message());
  }
  i.bound_port = i.acceptor.local_endpoint().port();
  for (auto& c : i.iocs) i.io_work.push_back(net::make_work_guard(*c));
  i.handler_work.emplace(i.handler_ioc.get_executor());
  i.DoAccept();
  for (auto& c : i.iocs) i.io_threads.emplace_back([c = c.get()] { c->run(); });
  for (int n = 0; n < i.opt.handler_threads; ++n) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    i.handler_done.push_back(done);
    i.handler_threads.emplace_back([&i, done] {
      i.handler_ioc.run();
      *done = true;
    });
  }
  return Status::Ok();
}

int Server::port() const { return impl_->bound_port; }

void Server::StopAccepting() {
  auto& i = *impl_;
  i.draining = true;
  net::post(i.ioc, [&i] {
    beast::error_code ec;
    i.acceptor.close(ec);
    i.accept_timer.cancel();
  });
  for (auto& s : i.LiveSessions()) net::post(s->executor(), [s] { s->CloseIfIdle(); });
}

int Server::in_flight() const { return impl_->in_flight.load(std::memory_order_acquire); }

bool Server::WaitIdle(std::chrono::steady_clock::time_point deadline) {
  MutexLock l(impl_->idle_mu);
  while (in_flight() != 0) {
    if (!impl_->idle_cv.WaitUntil(impl_->idle_mu, deadline)) return in_flight() == 0;
  }
  return true;
}

int Server::CloseAll() {
  auto& i = *impl_;
  int cut = in_flight();
  for (auto& s : i.LiveSessions()) net::post(s->executor(), [s] { s->ForceClose(); });
  return cut;
}

void Server::Stop(std::chrono::milliseconds handler_grace) {
  auto& i = *impl_;
  if (i.io_threads.empty() && i.handler_threads.empty()) return;
  i.draining = true;
  net::post(i.ioc, [&i] {
    beast::error_code ec;
    i.acceptor.close(ec);
    i.accept_timer.cancel();
  });
  i.handler_work.reset();
  i.handler_ioc.stop();
  // A handler stuck past the drain deadline cannot be interrupted; leave its thread behind
  // rather than hang the exit (the process is about to end).
  auto give_up = std::chrono::steady_clock::now() + handler_grace;
  for (size_t n = 0; n < i.handler_threads.size(); ++n) {
    while (!*i.handler_done[n] && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (*i.handler_done[n]) {
      i.handler_threads[n].join();
    } else {
      i.handler_threads[n].detach();
    }
  }
  i.handler_threads.clear();
  i.io_work.clear();
  for (auto& c : i.iocs) c->stop();
  for (auto& t : i.io_threads) t.join();
  i.io_threads.clear();
}

}  // namespace flovyn::http
