#include "password_pool.h"

#include <future>

#include "flovyn/core/mutex.h"
#include "identity.h"

namespace flovyn::app {

PasswordPool::PasswordPool(int threads, int queue_limit) : capacity_(threads + queue_limit) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> job;
        {
          MutexLock l(mu_);
          while (!stopping_ && queue_.empty()) cv_.Wait(mu_);
          if (queue_.empty()) return;  // stopping
          job = std::move(queue_.front());
          queue_.pop_front();
        }
        job();
      }
    });
  }
}

PasswordPool::~PasswordPool() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  for (auto& t : threads_) t.join();
}

Status PasswordPool::Run(std::function<void()> job) {
  std::promise<void> done;
  auto finished = done.get_future();
  {
    MutexLock l(mu_);
    if (admitted_ >= capacity_) {
      return Status(StatusCode::kResourceExhausted, "the console is busy checking passwords; try again in 1 s");
    }
    ++admitted_;
    queue_.push_back([this, &job, &done] {
      job();
      {
        MutexLock done_lock(mu_);
        --admitted_;
      }
      done.set_value();
    });
  }
  cv_.NotifyOne();
  finished.wait();
  return Status::Ok();
}

StatusOr<std::string> PasswordPool::Hash(std::string_view password) {
  std::string out;
  Status s = Run([&] { out = HashPassword(password); });
  if (!s.ok()) return s;
  return out;
}

StatusOr<bool> PasswordPool::Verify(const std::string& encoded, std::string_view password) {
  bool good = false;
  Status s = Run([&] { good = VerifyPassword(encoded, password); });
  if (!s.ok()) return s;
  return good;
}

}  // namespace flovyn::app
