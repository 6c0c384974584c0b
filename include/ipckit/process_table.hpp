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

// A lock held by a thread of the process.
struct HeldLock {
  std::string object;
  ObjectKind kind{};
  std::uint32_t tid = 0;
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
  ProcessState state{};  // Blocked whenever `waits` is not empty
  bool alive = false;    // checked at the read (pid + start time)
  std::int64_t attached_unix = 0;
  std::vector<WaitInfo> waits;
  std::vector<HeldLock> holds;
  std::vector<StateChange> history;  // oldest first, at most the last 8
};

}  // namespace ipckit
