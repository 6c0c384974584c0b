// src/cli/gc.hpp — `ipckit gc [--dry-run] [--grace S] [--json]`: removes the
// segments nobody uses any more.
//
// A segment is in use, and never removed, when a live process is listed in
// its process table (ipckit/process_table.hpp: pid and start time, so a
// recycled pid does not count), when a live process other than this one maps
// it (/proc/<pid>/maps, matched by inode: the fallback for processes the
// table does not list, e.g. a full table, a forked child not yet listed),
// when a process whose maps cannot be read might map it, or when its creator
// (pid and start time, from its header) is alive. Of the rest, only those older than the
// grace period go: a segment is linked under its name only once complete,
// but a process may be about to open one it just made or found. Just before
// removing one, gc checks again that the name is still that file, that no
// live process is listed in its table and that nobody maps it; a process opening it in the instant between still keeps
// its mapping (as after `ipckit rm`), but meets nobody under the name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "command.hpp"

namespace ipckit::cli {

struct GcDecision {
  std::string name;
  std::string action;  // "keep", "remove" (--dry-run), "removed", "failed"
  std::string reason;  // why, in words
  int creator_pid = 0;
  bool creator_alive = false;
  std::int64_t age_seconds = -1;  // -1: unknown
  std::vector<int> mapped_by;     // live processes mapping it
  std::vector<int> attached;      // live processes listed in its process table
};

// What gc would do (dry_run) or did with every segment. In use means: a
// live process in its table, a handle holding its lease (the kernel's
// answer: every participating handle keeps the file open with a shared
// flock), a process mapping it (where /proc/PID/maps is readable), or a
// live creator; the removal itself happens under an exclusive flock.
std::vector<GcDecision> collect_garbage(std::int64_t grace_seconds, bool dry_run);

Command add_gc(CLI::App& app);

}  // namespace ipckit::cli
