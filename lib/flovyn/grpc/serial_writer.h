// Base of Flovyn's server-streaming reactors: one write in flight at a time, and exactly one
// Finish, which waits for the write in flight when asked for during one. Subclasses hold mu_
// around every call (recursive: grpc++ may run OnWriteDone on the thread that called StartWrite).
#pragma once

#include <mutex>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "flovyn/core/mutex.h"

namespace flovyn::grpcsvc {

template <typename Message>
class SerialWriter : public ::grpc::ServerWriteReactor<Message> {
 protected:
  // No write may be in flight.
  void WriteLocked(Message m) REQUIRES(mu_) {
    out_ = std::move(m);
    writing_ = true;
    this->StartWrite(&out_);
  }
  // Finishes now, or after the write in flight.
  void FinishLocked(const ::grpc::Status& s) REQUIRES(mu_) {
    if (finished_) return;
    if (writing_) {
      if (!pending_) pending_ = s;
      return;
    }
    finished_ = true;
    this->Finish(s);
  }
  // From OnWriteDone, under mu_: true when the stream goes on; false when it has finished (the
  // caller went away, or a Finish was waiting for this write).
  bool WriteDoneLocked(bool ok) REQUIRES(mu_) {
    writing_ = false;
    if (!ok)
      FinishLocked(::grpc::Status::OK);
    else if (pending_)
      FinishLocked(*pending_);
    return !finished_;
  }
  bool writing() const REQUIRES(mu_) { return writing_; }
  bool finished() const REQUIRES(mu_) { return finished_; }

  RecursiveMutex mu_;

 private:
  Message out_ GUARDED_BY(mu_);
  bool writing_ GUARDED_BY(mu_) = false;
  bool finished_ GUARDED_BY(mu_) = false;
  std::optional<::grpc::Status> pending_ GUARDED_BY(mu_);
};

}  // namespace flovyn::grpcsvc
