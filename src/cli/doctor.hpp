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
// Checks that need the process table (deadlock cycles, stale slots) come
// with `ipckit ps`.
//
// JSON: {"findings": [{"segment", "object" (null for the segment), "check",
// "problem", "fix"}], "segments_checked"}.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "command.hpp"

namespace ipckit::cli {

struct Finding {
  std::string segment;
  std::optional<std::string> object;
  std::string check, problem, fix;  // unescaped
};

Command add_doctor(CLI::App& app);

}  // namespace ipckit::cli
