// src/cli/doctor.hpp — `ipckit doctor [SEG] [--json]`: what is wrong, and how
// to fix it, one finding per line. Exit status 5 when there is a finding.
//
// Checks (all read-only; none waits on another process):
//   dead_lock_holder  a lock (a Lock/RLock, a Value's lock, a queue's
//                     producers/consumers or priority lock) held by a dead thread
//   abandoned_tasks   a joinable queue's items whose consumer died before task_done()
//   world_accessible  a segment any local user may read or write (mode o+r/o+w)
//   unused_segment    no process maps it and its creator is gone (what `ipckit gc` removes)
//   unreadable        a segment that cannot be opened (corrupt, planted)
//   deadlock          a cycle of lock waits between threads (Segment::deadlocks()):
//                     one finding per cycle, naming every process and lock
//   stale_slot        a process table slot of a dead process (harmless: the next
//                     process that attaches reclaims it)
//
// JSON: {"findings": [{"segment", "object" (null for the segment), "check",
// "problem", "fix", "pids" (the processes involved, maybe [])}, and for a
// deadlock "cycle": [{"pid", "tid", "name", "holds", "waits_for"}]],
// "segments_checked"}.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "command.hpp"
#include "ipckit/process_table.hpp"

namespace ipckit::cli {

struct Finding {
  // A constructor rather than an aggregate: most checks involve no process.
  Finding(std::string segment_, std::optional<std::string> object_, std::string check_, std::string problem_,
          std::string fix_, std::vector<int> pids_ = {}, std::vector<DeadlockMember> cycle_ = {})
      : segment(std::move(segment_)),
        object(std::move(object_)),
        check(std::move(check_)),
        problem(std::move(problem_)),
        fix(std::move(fix_)),
        pids(std::move(pids_)),
        cycle(std::move(cycle_)) {}
  std::string segment;
  std::optional<std::string> object;
  std::string check, problem, fix;    // unescaped
  std::vector<int> pids;              // the processes involved
  std::vector<DeadlockMember> cycle;  // a deadlock's members, in the order of the cycle
};

Command add_doctor(CLI::App& app);

}  // namespace ipckit::cli
