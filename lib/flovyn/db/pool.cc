#include "flovyn/db/pool.h"

#include <poll.h>

#include <charconv>

#include "flovyn/core/mutex.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/db/sqlstate.h"

namespace flovyn::db {
namespace {

int MillisUntil(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Waits until the socket is readable/writable or the deadline passes.
Status WaitSocket(PGconn* conn, bool for_write, Clock::time_point deadline) {
  int fd = PQsocket(conn);
  if (fd < 0) return Unavailable("database connection lost");
  pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  for (;;) {
    int ms = MillisUntil(deadline);
    int n = ::poll(&p, 1, ms);
    if (n > 0) return Status::Ok();
    if (n == 0) return DeadlineExceeded("database did not answer in time");
    if (errno != EINTR) return Unavailable("poll failed on database socket");
  }
}

// Sends one statement: prepared as `name`, or the text `sql` unprepared when `name` is null.
// False when libpq could not send it (the connection is lost).
bool Send(PGconn* c, const std::string* name, const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  int n = static_cast<int>(values.size());
  return (name != nullptr ? PQsendQueryPrepared(c, name->c_str(), n, values.data(), nullptr, nullptr, 0)
                          : PQsendQueryParams(c, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0)) != 0;
}

std::string ConnError(PGconn* c) {
  std::string m = c ? PQerrorMessage(c) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  auto nl = m.find('\n');
  if (nl != std::string::npos) m = m.substr(0, nl);
  return m;
}

}  // namespace

int64_t Result::GetInt(int row, int col) const {
  auto v = Get(row, col);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

long Result::affected() const {
  const char* n = PQcmdTuples(res_.get());
  return n && *n ? std::strtol(n, nullptr, 10) : 0;
}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::Flush(Clock::time_point deadline) {
  for (;;) {
    int r = PQflush(conn_);
    if (r == 0) return Status::Ok();
    if (r < 0) {
      broken_ = true;
      return Unavailable("database connection lost: " + ConnError(conn_));
    }
    Status s = WaitSocket(conn_, true, deadline);
    if (!s.ok()) {
      broken_ = true;
      return s;
    }
    if (PQconsumeInput(conn_) == 0) {
      broken_ = true;
      return Unavailable("database connection lost: " + ConnError(conn_));
    }
  }
}

StatusOr<Result> Connection::Collect(Clock::time_point deadline) {
  Status flushed = Flush(deadline);
  if (!flushed.ok()) return flushed;
  Result last;
  Status error;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      Status s = WaitSocket(conn_, false, deadline);
      if (!s.ok()) {
        broken_ = true;  // mid-protocol: the connection cannot be reused
        return s;
      }
      if (PQconsumeInput(conn_) == 0) {
        broken_ = true;
        return Unavailable("database connection lost: " + ConnError(conn_));
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
      last = Result(r);
    } else if (st == PGRES_PIPELINE_ABORTED) {  // skipped after an earlier statement's error
      aborted_ = true;
      if (error.ok()) error = Status(StatusCode::kInternal, "statement skipped: an earlier one in its pipeline failed");
      PQclear(r);
    } else {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      if (error.ok()) {
        if (state == nullptr) {
          error = Unavailable("database connection lost: " + ConnError(conn_));
          broken_ = true;
        } else {
          error = StatusFromSqlState(state, msg ? msg : "");
        }
      }
      PQclear(r);
    }
  }
  last_used_ = Clock::now();
  if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
  if (!error.ok()) return error;
  return last;
}

StatusOr<const std::string*> Connection::Prepared(const std::string& sql, int params, Clock::time_point deadline) {
  if (auto it = prepared_.find(sql); it != prepared_.end()) return &it->second;
  if (prepared_.size() >= max_prepared_) return nullptr;
  std::string name = "flovyn_" + std::to_string(prepared_.size());
  if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), params, nullptr) == 0) {
    broken_ = true;
    return Unavailable("database connection lost: " + ConnError(conn_));
  }
  RETURN_IF_ERROR(Collect(deadline).status());
  return &prepared_.emplace(sql, std::move(name)).first->second;
}

StatusOr<Result> Connection::Exec(std::string_view sql, const Params& params, Clock::time_point deadline) {
  skipped_ = false;
  std::string q(sql);
  ASSIGN_OR_RETURN(const std::string* name, Prepared(q, static_cast<int>(params.size()), deadline));
  if (pending_begin_ || !deferred_.empty()) {
    Queued current{name, std::move(q), params};
    return Pipelined(&current, deadline);
  }
  if (!Send(conn_, name, q, params)) return Lost();
  return Collect(deadline);
}

Status Connection::Lost() {
  broken_ = true;
  return Unavailable("database connection lost: " + ConnError(conn_));
}

Status Connection::Defer(std::string_view sql, const Params& params, Clock::time_point deadline) {
  std::string q(sql);
  ASSIGN_OR_RETURN(const std::string* name, Prepared(q, static_cast<int>(params.size()), deadline));
  deferred_.push_back({name, std::move(q), params, {}});
  return Status::Ok();
}

Status Connection::DeferInto(std::string_view sql, const Params& params, Result* into, Clock::time_point deadline) {
  RETURN_IF_ERROR(Defer(sql, params, deadline));
  deferred_.back().into = into;
  return Status::Ok();
}

Status Connection::DeferRow(std::string_view sql, Params row, Clock::time_point deadline) {
  if (!deferred_.empty() && !deferred_.back().rows.empty() && deferred_.back().sql == sql &&
      deferred_.back().rows.front().size() == row.size()) {
    deferred_.back().rows.push_back(std::move(row));
    return Status::Ok();
  }
  std::string q(sql);
  ASSIGN_OR_RETURN(const std::string* name, Prepared(q, static_cast<int>(row.size()), deadline));
  deferred_.push_back({name, std::move(q), {}, {}});
  deferred_.back().rows.push_back(std::move(row));
  return Status::Ok();
}

namespace {
// The rows' k-th values as PostgreSQL's array text: {"a","b\"c",NULL}.
void MakeArrays(const std::vector<Params>& rows, Params& out) {
  size_t columns = rows.front().size();
  out.assign(columns, std::string("{"));
  for (size_t k = 0; k < columns; ++k) {
    std::string& a = *out[k];
    for (size_t r = 0; r < rows.size(); ++r) {
      if (r > 0) a += ',';
      const auto& v = rows[r][k];
      if (!v) {
        a += "NULL";
        continue;
      }
      a += '"';
      for (char c : *v) {
        if (c == '"' || c == '\\') a += '\\';
        a += c;
      }
      a += '"';
    }
    a += '}';
  }
}
}  // namespace

StatusOr<Result> Connection::Pipelined(const Queued* current, Clock::time_point deadline) {
  std::vector<Queued> queued = std::move(deferred_);
  deferred_.clear();
  bool begin = pending_begin_;
  pending_begin_ = false;
  if (PQenterPipelineMode(conn_) == 0) return Lost();
  bool sent = !begin || Send(conn_, nullptr, "BEGIN", {});
  for (size_t i = 0; sent && i < queued.size(); ++i) {
    if (!queued[i].rows.empty()) MakeArrays(queued[i].rows, queued[i].params);
    sent = Send(conn_, queued[i].name, queued[i].sql, queued[i].params);
  }
  if (sent && current != nullptr) sent = Send(conn_, current->name, current->sql, current->params);
  if (!sent || PQpipelineSync(conn_) == 0) return Lost();
  // Each statement's results end with a null; after an error the rest come back aborted; the
  // sync's own result ends the pipeline.
  Status first;
  StatusOr<Result> last = Result();
  size_t statements = (begin ? 1 : 0) + queued.size() + (current != nullptr ? 1 : 0);
  for (size_t i = 0; i < statements; ++i) {
    aborted_ = false;
    last = Collect(deadline);
    if (current != nullptr && i + 1 == statements) skipped_ = aborted_;
    size_t q = i - (begin ? 1 : 0);
    if (i >= (begin ? 1u : 0u) && q < queued.size() && queued[q].into != nullptr && last.ok()) *queued[q].into = *last;
    if (broken_) return last.ok() ? Status(Unavailable("database connection lost")) : last.status();
    if (!last.ok() && first.ok()) first = last.status();
  }
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      Status s = WaitSocket(conn_, false, deadline);
      if (!s.ok()) {
        broken_ = true;
        return s;
      }
      if (PQconsumeInput(conn_) == 0) return Lost();
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) return Lost();
    bool synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (synced) break;
  }
  if (PQexitPipelineMode(conn_) == 0) return Lost();
  if (!first.ok()) return first;
  return last;
}

Status Connection::ExecSimple(std::string_view sql, Clock::time_point deadline) {
  skipped_ = false;
  std::string q(sql);
  if (q.rfind("ROLLBACK", 0) == 0) deferred_.clear();  // undone unsent
  if (!deferred_.empty()) {
    if (q.find(';') == std::string::npos) {  // one statement: in the same pipeline
      Queued current{nullptr, std::move(q), {}};
      return Pipelined(&current, deadline).status();
    }
    if (auto sent = Pipelined(nullptr, deadline); !sent.ok()) {
      skipped_ = true;  // `sql` was never sent
      return sent.status();
    }
  }
  if (pending_begin_) {
    pending_begin_ = false;
    if (q == "COMMIT" || q == "ROLLBACK") return Status::Ok();  // nothing was done
    q = "BEGIN; " + q;
  }
  if (PQsendQuery(conn_, q.c_str()) == 0) return Lost();
  return Collect(deadline).status();
}

Status Connection::WaitReadable(Clock::time_point deadline) {
  Status s = WaitSocket(conn_, false, deadline);
  if (!s.ok()) return s;
  if (PQconsumeInput(conn_) == 0) {
    broken_ = true;
    return Unavailable("database connection lost: " + ConnError(conn_));
  }
  return Status::Ok();
}

PooledConnection::~PooledConnection() {
  if (conn_ && pool_) pool_->Release(std::move(conn_));
}

Pool::Pool(PoolOptions options) : options_(std::move(options)) {}

Pool::~Pool() { Close(); }

StatusOr<std::unique_ptr<Connection>> Pool::Connect(Clock::time_point deadline) {
  std::string timeout_opt = "-c statement_timeout=" + std::to_string(options_.statement_timeout.count());
  const char* keys[] = {"dbname", "application_name", "options", nullptr};
  const char* vals[] = {options_.url.c_str(), options_.application_name.c_str(), timeout_opt.c_str(), nullptr};
  PGconn* c = PQconnectStartParams(keys, vals, 1);
  if (c == nullptr || PQstatus(c) == CONNECTION_BAD) {
    std::string m = ConnError(c);
    PQfinish(c);
    return Unavailable("cannot connect to database: " + m);
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  for (;;) {
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED) {
      std::string m = ConnError(c);
      PQfinish(c);
      return Unavailable("cannot connect to database: " + m);
    }
    Status s = WaitSocket(c, st == PGRES_POLLING_WRITING, deadline);
    if (!s.ok()) {
      PQfinish(c);
      return Unavailable("cannot connect to database: timed out");
    }
    st = PQconnectPoll(c);
  }
  if (PQsetnonblocking(c, 1) != 0) {
    PQfinish(c);
    return Unavailable("cannot set database connection non-blocking");
  }
  uint64_t gen;
  {
    MutexLock l(mu_);
    gen = generation_;
  }
  return std::unique_ptr<Connection>(new Connection(c, gen, options_.prepared_per_connection));
}

bool Connection::IdleAlive() {
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (p.fd < 0) return false;
  if (::poll(&p, 1, 0) <= 0) return true;  // nothing pending: alive as far as can be told
  // Something arrived on a connection nobody is using: in practice a termination notice
  // ("terminating connection due to administrator command") or end of stream. Not worth the risk.
  return false;
}

StatusOr<PooledConnection> Pool::Acquire(std::optional<Clock::time_point> deadline_opt) {
  Clock::time_point deadline = deadline_opt.value_or(Clock::now() + options_.acquire_timeout);
  UniqueLock l(mu_);
  for (;;) {
    if (closed_) return Unavailable("database pool is closed");
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.front());
      idle_.pop_front();
      if (c->broken() || c->generation_ < generation_ || !c->IdleAlive()) {
        --open_;
        continue;  // destroyed outside the lock would be nicer; PQfinish is quick
      }
      ++in_use_;
      return PooledConnection(this, std::move(c));
    }
    if (open_ < options_.max_size) {
      ++open_;
      ++in_use_;
      ++connects_;
      l.Unlock();
      auto c = Connect(std::min(deadline, Clock::now() + options_.connect_timeout));
      if (!c.ok()) {
        l.Lock();
        --open_;
        --in_use_;
        ++connect_failures_;
        cv_.NotifyOne();
        return c.status();
      }
      return PooledConnection(this, std::move(c).value());
    }
    ++waiting_;
    bool got = true;
    while (got && !closed_ && idle_.empty() && open_ >= options_.max_size) got = cv_.WaitUntil(mu_, deadline);
    got = got || closed_ || !idle_.empty() || open_ < options_.max_size;
    --waiting_;
    if (!got) {
      ++acquire_timeouts_;
      return Unavailable("no database connection available within the deadline");
    }
  }
}

void Pool::Release(std::unique_ptr<Connection> c) {
  c->pending_begin_ = false;  // a transaction begun and left without a statement
  c->deferred_.clear();
  MutexLock l(mu_);
  --in_use_;
  if (c->broken()) {
    // A broken connection usually means the server restarted: idle siblings are dead too.
    ++generation_;
    --open_;
    c.reset();
  } else if (closed_ || c->generation_ < generation_) {
    --open_;
    c.reset();
  } else {
    idle_.push_back(std::move(c));
  }
  cv_.NotifyOne();
}

StatusOr<Result> Pool::Query(std::string_view sql, const Params& params) {
  auto deadline = Clock::now() + options_.statement_timeout;
  auto conn = Acquire(std::min(deadline, Clock::now() + options_.acquire_timeout));
  if (!conn.ok()) return conn.status();
  return (*conn)->Exec(sql, params, deadline);
}

void Pool::Close() {
  std::deque<std::unique_ptr<Connection>> idle;
  {
    MutexLock l(mu_);
    closed_ = true;
    open_ -= static_cast<int>(idle_.size());
    idle.swap(idle_);
  }
  cv_.NotifyAll();
}

PoolStats Pool::stats() const {
  MutexLock l(mu_);
  return PoolStats{options_.max_size, open_, in_use_, waiting_, connects_, connect_failures_, acquire_timeouts_};
}

}  // namespace flovyn::db
