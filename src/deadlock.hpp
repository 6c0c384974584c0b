// deadlock.hpp — finding cycles of lock waits in a segment's process table
// (internal). The rules are in <ipckit/process_table.hpp>, "Deadlock detection".
#pragma once

#include "ipckit/detail/label.hpp"
#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

class SegmentImpl;

// Called by lock_slow before the calling thread sleeps on `lock` (at first
// and on every liveness tick) when the lock's segment has detection on.
// Throws DeadlockDetected about `who` when the caller's wait closes a cycle
// seen twice unchanged, every member alive, and the caller is the member
// chosen to give up; returns otherwise. Never waits for another process.
void give_up_if_deadlocked(const SegmentImpl& segment, const LockState& lock, const ThreadIdentity& me,
                           const Label& who);

}  // namespace ipckit::detail
