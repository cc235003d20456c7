// Base of Flovyn's server-streaming reactors: one write in flight at a time, and exactly one
// Finish, which waits for the write in flight when asked for during one. Subclasses hold mu_
// around every call (recursive: grpc++ may run OnWriteDone on the thread that called StartWrite).
#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <optional>

namespace flovyn::grpcsvc {

template <typename Message>
class SerialWriter : public ::grpc::ServerWriteReactor<Message> {
 protected:
  // Requires mu_ and no write in flight.
  void WriteLocked(Message m) {
    out_ = std::move(m);
    writing_ = true;
    this->StartWrite(&out_);
  }
  // Finishes now, or after the write in flight. Requires mu_.
  void FinishLocked(const ::grpc::Status& s) {
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
  bool WriteDoneLocked(bool ok) {
    writing_ = false;
    if (!ok) FinishLocked(::grpc::Status::OK);
    else if (pending_) FinishLocked(*pending_);
    return !finished_;
  }
  bool writing() const { return writing_; }
  bool finished() const { return finished_; }

  std::recursive_mutex mu_;

 private:
  Message out_;                              // guarded by mu_
  bool writing_ = false, finished_ = false;  // guarded by mu_
  std::optional<::grpc::Status> pending_;    // guarded by mu_
};

}  // namespace flovyn::grpcsvc
