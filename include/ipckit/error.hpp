// ipckit/error.hpp — the exceptions every ipckit call may throw.
//
// Every failure is an `ipckit::Error` (a std::runtime_error). Its message names
// the object involved (segment, object, process) and says what to do about it.
// `object()` returns that name alone ("counter"), `segment()` the segment it
// lives in, or the segment the error is about ("demo"; empty when no segment
// is involved, e.g. for a process), `code()` the underlying system error when
// there is one (default-constructed otherwise).
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace ipckit {

class Error : public std::runtime_error {
 public:
  Error(std::string object, const std::string& message, std::error_code code = {})
      : std::runtime_error(message), object_(std::move(object)), code_(code) {}
  Error(std::string object, std::string segment, const std::string& message, std::error_code code = {})
      : std::runtime_error(message), object_(std::move(object)), segment_(std::move(segment)), code_(code) {}

  [[nodiscard]] const std::string& object() const noexcept { return object_; }
  [[nodiscard]] const std::string& segment() const noexcept { return segment_; }
  [[nodiscard]] std::error_code code() const noexcept { return code_; }

 private:
  std::string object_;
  std::string segment_;
  std::error_code code_;
};

// A class name cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define IPCKIT_ERROR_CLASS(Name) \
  class Name : public Error {    \
   public:                       \
    using Error::Error;          \
  }
// NOLINTEND(bugprone-macro-parentheses)

IPCKIT_ERROR_CLASS(NotFound);          // no segment / object of that name
IPCKIT_ERROR_CLASS(AlreadyExists);     // exclusive create of a name that is taken
IPCKIT_ERROR_CLASS(TypeMismatch);      // object opened as another type, kind or size
IPCKIT_ERROR_CLASS(InvalidName);       // empty, '/', too long, control characters
IPCKIT_ERROR_CLASS(PermissionDenied);  // the segment's mode forbids this user
IPCKIT_ERROR_CLASS(CorruptSegment);    // bad magic, truncated, future version, bad offsets
IPCKIT_ERROR_CLASS(OutOfSpace);        // the segment (or its directory) is full
IPCKIT_ERROR_CLASS(OutOfRange);        // Array::at with a bad index
IPCKIT_ERROR_CLASS(InvalidArgument);   // a bad size, count or option
IPCKIT_ERROR_CLASS(NotOwner);          // unlock of a lock the caller does not hold
IPCKIT_ERROR_CLASS(Timeout);           // a timed blocking call ran out of time
IPCKIT_ERROR_CLASS(DeadlockDetected);  // the wait can never end (e.g. relocking a Lock)
IPCKIT_ERROR_CLASS(ProcessError);      // start/join misuse, fork/exec failure
IPCKIT_ERROR_CLASS(WorkerDied);        // a worker process ended before finishing its task
IPCKIT_ERROR_CLASS(Full);              // put_nowait on a full queue
IPCKIT_ERROR_CLASS(Empty);             // get_nowait on an empty queue
IPCKIT_ERROR_CLASS(Closed);            // the queue was closed
IPCKIT_ERROR_CLASS(Cancelled);         // a pool task cancelled before a worker took it
IPCKIT_ERROR_CLASS(MessageTooLarge);   // an item that the queue can never hold
IPCKIT_ERROR_CLASS(DecodeError);       // a queued payload that does not decode as T (it is dropped)
IPCKIT_ERROR_CLASS(BrokenBarrier);     // the barrier was aborted or a party died
IPCKIT_ERROR_CLASS(TooManyReleases);   // a bounded semaphore released above its initial value
IPCKIT_ERROR_CLASS(SystemError);       // an unexpected errno from the OS
IPCKIT_ERROR_CLASS(ConnectionLost);    // a network transport (ipckit::redis) could not reach its server in time

#undef IPCKIT_ERROR_CLASS

}  // namespace ipckit
