// ipckit/process_table.hpp — who is attached to a segment, and what they do.
//
//   for (const auto& p : seg.processes())
//     std::cout << p.pid << " " << p.name << " " << ipckit::to_string(p.state) << "\n";
//
// Every process that creates or opens a segment takes a slot in its process
// table (a forked child takes its own on its first blocking wait; a child
// started by ipckit::Process right after fork). A slot holds the process's
// pid and start time (a recycled pid is never mistaken for the old process),
// its name (current_process().name), when it attached, its lifecycle state
// and, per blocked thread, what it waits on. A full table
// (SegmentOptions::max_processes) only means "not listed". Slots of dead
// processes are reclaimed by the next process that needs one.
//
// Deadlock detection (SegmentOptions::deadlock_detection): a thread about
// to sleep in Lock/RLock lock() (timed or not; try_lock never sleeps) walks
// the wait-for graph in the segment's table: the lock's holder, the lock
// that holder's thread waits for, its holder, and so on. When the walk comes
// back to the caller, the cycle is confirmed by a second look that must see
// every link unchanged, and every member must be alive (a dead holder's lock
// is taken over instead, as always). Then exactly one member gives up: the
// thread that started last (the largest start time, then tid), so every
// member chooses the same one. It throws DeadlockDetected naming every
// process and lock of the cycle; the others go on waiting and get their
// locks once the victim's unwinding releases its own. Waiters check when
// they fall asleep and every 25 ms after, so a cycle is broken within about
// 25 ms of closing. Re-acquiring a Condition's lock after a wait never gives
// up (Python's semantics), but such waits are links other members see.
// Scope: one segment (a cycle through locks of two segments is not seen).
//
// Reading never locks and never waits for another process: a stopped or
// dead process changes nothing. Every byte read is validated; a slot being
// written is skipped. Look-only opens (OpenOptions::any_owner: ipckit's CLI)
// are not listed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ipckit/segment.hpp"

namespace ipckit {

// The seed's lifecycle of a thread, per process. Blocked is shown while a
// thread of the process sleeps in a blocking call (after spinning).
enum class ProcessState : std::uint32_t { New = 0, Runnable = 1, Running = 2, Blocked = 3, Terminated = 4 };
const char* to_string(ProcessState state) noexcept;

// What one thread of a process is blocked on.
struct WaitInfo {
  std::uint32_t tid = 0;
  std::uint64_t thread_start_ticks = 0;  // with tid, the thread's identity
  std::string operation;                 // "lock", "acquire", "wait", "get", "put", "join"
  std::string object;                    // its name; empty when the word is in no object
  ObjectKind kind{};                     // valid when `object` is not empty
  std::uint64_t offset = 0;              // of the word waited on, in the segment
  double seconds = 0;                    // how long it has been blocked
};

// A lock held by a thread of the process: a Lock, RLock or Condition, or
// the lock built into another object (`part` says which).
struct HeldLock {
  std::string object;
  ObjectKind kind{};
  std::uint32_t tid = 0;
  // "" for a Lock/RLock/Condition; "its lock" for a Value's or Array's own
  // lock (get_lock()) and a priority/LIFO queue's; "producers' side" or
  // "consumers' side" for a FIFO queue's, held by a loan or view for as
  // long as it lives (and by a put/get while it runs, or waits for room/items).
  std::string part;
};

struct StateChange {
  ProcessState state{};
  std::int64_t unix_us = 0;  // when
};

struct AttachedProcess {
  std::uint32_t slot = 0;
  int pid = 0;
  std::uint64_t start_ticks = 0;
  std::string name;      // bytes as stored, at most 23 (untrusted: escape before printing)
  ProcessState state{};  // Blocked whenever it is alive and `waits` is not empty
  bool alive = false;    // checked at the read (pid + start time)
  std::int64_t attached_unix = 0;
  std::vector<WaitInfo> waits;
  std::vector<HeldLock> holds;
  std::vector<StateChange> history;  // oldest first, at most the last 8
};

// One thread of a deadlock cycle: it holds `holds` and waits for `waits_for`,
// which the next member holds (the last member's is held by the first).
struct DeadlockMember {
  int pid = 0;
  std::uint32_t tid = 0;
  std::string name;          // the process's name in the table (untrusted: escape before printing)
  std::string holds;         // "lock 'A'"
  std::string waits_for;     // "lock 'B'"
  bool may_give_up = false;  // false: re-acquiring a Condition's lock (never gives up)
};

struct Deadlock {
  std::vector<DeadlockMember> members;
  // "pid 7 (worker-1) holds lock 'A' and waits for lock 'B'; pid 8 (worker-2) holds lock 'B' and waits for lock 'A'"
  [[nodiscard]] std::string describe() const;
};

}  // namespace ipckit
