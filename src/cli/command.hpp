// src/cli/command.hpp — what every `ipckit` subcommand shares: the exit
// statuses (documented in `ipckit --help`) and how a subcommand registers
// itself with CLI11.
//
// Each command lives in its own file (rm.cpp, gc.cpp, queue_io.cpp, ...)
// and offers one `add_<name>(CLI::App&)` returning the Command that main
// runs when its subcommand was given.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace ipckit::cli {

// Exit statuses of `ipckit`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // ipckit reported an error ("ipckit: ..." on stderr)
inline constexpr int kExitUsage = 2;     // a bad command line
inline constexpr int kExitEmpty = 3;     // get: the queue stayed empty until --timeout (or was closed)
inline constexpr int kExitFull = 4;      // put: the queue stayed full until --timeout
inline constexpr int kExitFindings = 5;  // doctor: something is wrong (each finding says how to fix it)

// The footer of `ipckit --help`.
inline constexpr const char* kExitHelp =
    "Exit status: 0 ok; 1 error (\"ipckit: <message>\" on stderr); 2 bad command line;\n"
    "3 get found the queue empty until --timeout, or closed; 4 put found it full until --timeout;\n"
    "5 doctor found something wrong.\n"
    "Every reporting command takes --json (field names are stable; docs/cli.md lists them). Human output escapes\n"
    "control characters and bytes that are not UTF-8 (\\n, \\xNN, \\uNNNN).";

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

}  // namespace ipckit::cli
