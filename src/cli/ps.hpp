// src/cli/ps.hpp — `ipckit ps [SEG]`: the process table of one segment, or
// of every segment: pid, name, state, what it is blocked on, the locks it
// holds, when it attached. Reads never lock or wait (process_table.hpp).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "ipckit/process_table.hpp"
#include "json.hpp"

namespace ipckit::cli {

// One segment's processes as `ipckit ps SEG` shows them (for `ipckit
// watch`): the table, escaped, and the JSON array of "processes".
void print_processes(std::ostream& out, const std::vector<AttachedProcess>& processes);
Json processes_json(const std::vector<AttachedProcess>& processes);

// Writes the table (or JSON) to `out`; returns the exit status: 0, or 1
// when a named segment cannot be opened (the error goes to `err`).
int run_ps(std::ostream& out, std::ostream& err, const std::optional<std::string>& segment, bool json);

Command add_ps(CLI::App& app);

}  // namespace ipckit::cli
