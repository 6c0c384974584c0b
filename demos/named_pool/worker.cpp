// named_pool_worker — a worker program of the named_pool demo: it serves the
// pool by name, a program of its own (started by the demo with
// Process::exec, or by hand, or by systemd):
//
//   named_pool_worker --pool demo-named-pool-1234
//
// It runs the tasks of tasks.hpp for whichever client submits them, client
// after client, until the pool is closed (close_pool) or it gets SIGTERM or
// SIGINT; then it exits 0. An ipckit error (the pool exists with other
// options, max_workers serve already) is printed, exit code 1.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <string>

#include "demo.hpp"
#include "tasks.hpp"

namespace {
volatile std::sig_atomic_t g_stop = 0;
}

int main(int argc, char** argv) {
  CLI::App app{"A worker program of the named_pool demo: serves a named ipckit pool"};
  std::string pool;
  app.add_option("--pool", pool, "the pool's name")->required();
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  try {
    demo::say("worker pid %d: serving pool '%s'\n", static_cast<int>(::getpid()), pool.c_str());
    ipckit::serve_pool(pool, {.stop = &g_stop});
    demo::say("worker pid %d: the pool is closed, exiting\n", static_cast<int>(::getpid()));
    return 0;
  } catch (const ipckit::Error& e) {
    demo::say("worker pid %d: %s\n", static_cast<int>(::getpid()), e.what());
    return 1;
  }
}
