// ipckit/detail/wait_record.hpp — what a thread is blocked on, as the
// segment's process table shows it (see ipckit/process_table.hpp).
//
// Only slow paths call this: a waiter that has spun without success and is
// about to sleep publishes {its tid + start time, the word it waits on, the
// operation} in its process's slot, and takes it back when the wait ends.
// The word's segment and offset are found from its address (the segments
// this process has mapped), so no primitive passes its identity around, and
// the uncontended fast paths never get here.
#pragma once

#include <cstdint>

namespace ipckit::detail {

// The operation a thread is blocked in (stored in shared memory: numbers are fixed).
enum class WaitOp : std::uint32_t {
  None = 0,
  Lock = 1,     // Lock/RLock acquire (also a Condition's lock, a segment's directory lock)
  Acquire = 2,  // Semaphore acquire
  Wait = 3,     // Event/Condition/Barrier wait
  Get = 4,      // queue get
  Put = 5,      // queue put (full)
  Join = 6,     // joinable queue join
  Relock = 7,   // a lock acquire that never gives up: a Condition's lock after a wait, a queue's own lock
};
inline constexpr std::uint32_t kLastWaitOp = 7;

class SegmentImpl;

struct WaitToken {
  void* record = nullptr;  // the published wait record, or null when not listed
  void* slot = nullptr;
  // The word's segment when its deadlock detection is on (even when the
  // wait is not listed), else null.
  const SegmentImpl* detecting = nullptr;
};

// Publishes "the calling thread waits on `word` in `op`"; a null token when
// `word` is in no listed segment, or the table or the slot's records are
// full (then the wait is simply not shown). Never throws, never blocks on
// another process.
WaitToken wait_begin(const void* word, WaitOp op) noexcept;
void wait_end(const WaitToken& token) noexcept;

// A wait record for the scope of one blocking wait; begin() may be called
// late (after spinning), end happens at scope exit.
class WaitScope {
 public:
  WaitScope() = default;
  WaitScope(const WaitScope&) = delete;
  WaitScope& operator=(const WaitScope&) = delete;
  ~WaitScope() {
    if (token_.record != nullptr) wait_end(token_);
  }
  void begin(const void* word, WaitOp op) noexcept {
    if (!begun_) token_ = wait_begin(word, op);
    begun_ = true;
  }
  // The segment to look for deadlock cycles in, if begin() found one with detection on.
  [[nodiscard]] const SegmentImpl* detecting() const noexcept { return token_.detecting; }

 private:
  WaitToken token_;
  bool begun_ = false;
};

}  // namespace ipckit::detail
