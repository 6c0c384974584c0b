// src/cli/rm.hpp — `ipckit rm SEG... [-f] [--json]`: deletes segments by name
// (processes that have one mapped keep using it until they exit).
#pragma once

#include "command.hpp"

namespace ipckit::cli {

Command add_rm(CLI::App& app);

}  // namespace ipckit::cli
