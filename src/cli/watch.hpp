// src/cli/watch.hpp — `ipckit watch SEG [OBJ]`: inspect, again and again.
//
// Every --interval seconds (default 1) it prints what `ipckit inspect`
// prints, then each queue's depth and its rate (change in items per second
// since the previous refresh; + filling, - draining), then the segment's
// processes as `ipckit ps SEG` shows them (state, blocked on, holds). On a terminal it
// redraws in place (ANSI clear and home); otherwise (a pipe, a file) it
// appends plain snapshots, each starting with its "segment '...'" line.
// --count N stops after N snapshots (0: until interrupted). --json prints
// one compact JSON document per line: inspect's document plus "time_unix",
// "processes" (ps's entries) and, on each queue object, "rate_per_second"
// (null on the first).
#pragma once

#include "command.hpp"

namespace ipckit::cli {

Command add_watch(CLI::App& app);

}  // namespace ipckit::cli
