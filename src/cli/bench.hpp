// src/cli/bench.hpp — `ipckit bench [ARGS...]`: runs scripts/bench.sh, the
// side-by-side benchmarks, passing ARGS through (section names, --list,
// --strict).
//
// The script is found, in this order: --script PATH, $IPCKIT_BENCH_SCRIPT,
// the source tree this ipckit was built from, and ../scripts/bench.sh next to
// the executable. It is run with bash in place of ipckit (exec), so its
// output and exit status are the command's.
#pragma once

#include "command.hpp"

namespace ipckit::cli {

Command add_bench(CLI::App& app);

}  // namespace ipckit::cli
