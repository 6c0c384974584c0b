// tests/cli_run.hpp — runs the `ipckit` CLI built alongside the tests
// (IPCKIT_CLI, set by tests/CMakeLists.txt) and captures what it prints.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

namespace ipckit::testing {

// Runs the CLI with `args`; its exit status and standard output.
inline std::pair<int, std::string> run_cli(const std::string& args) {
  const std::string command = std::string(IPCKIT_CLI) + " " + args + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe.release());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace ipckit::testing
