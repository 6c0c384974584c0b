// join_daemon — "Join and Daemon" with processes instead of threads.
//
//   join_daemon [--workers 50] [--sleep-ms 300]      start N workers, join them all
//   join_daemon --daemon [--kill-main]               daemon workers die with their parent
//
// Join mode: each worker prints "Running on number: i" and sleeps; the main
// process counts its active children, joins every worker and shows that the
// whole run took about one sleep, not N of them.
//
// Daemon mode: the workers are daemons that would sleep for a minute, and the
// process that started them ends without joining them. A process cannot
// watch its own death, so the top process here plays the part of a shell:
// it starts a "main" Process, which starts the daemon workers, and after
// "main" ends (it returns, or with --kill-main it is SIGKILLed) the top
// process checks that every worker is gone — killed by SIGKILL — within a
// deadline.
//
// Exit code 0 when everything behaved, 1 otherwise (it runs as a test).
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ipckit/process.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "demo.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using demo::ms_since;
using demo::say;

namespace {

// Long enough that, in daemon mode, only the death of their parent can end
// the workers within the demo's deadlines.
constexpr auto kDaemonSleep = 60s;

// A pipe that carries pids from the workers to the top process.
class PidPipe {
 public:
  PidPipe() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
  }
  void send(pid_t pid) const {
    if (::write(fds_[1], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) ::_exit(3);
  }
  // The next pid, or nullopt if none came before the deadline.
  [[nodiscard]] std::optional<pid_t> receive(Clock::time_point deadline) const {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fds_[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) > 0) {
        pid_t pid;
        if (::read(fds_[0], &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid)) return pid;
        return std::nullopt;
      }
    }
  }

 private:
  int fds_[2];
};

// --- join mode -----------------------------------------------------------------

int run_join(int workers, int sleep_ms) {
  const auto t0 = Clock::now();
  std::vector<ipckit::Process> tasks;
  tasks.reserve(workers);
  for (int i = 0; i < workers; ++i) {
    tasks.emplace_back([i, sleep_ms] {
      say("Running on number: %d\n", i);
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    });
    tasks.back().start();  // does not block
  }
  say("active children: %zu\n", ipckit::active_children().size());

  bool ok = true;
  for (auto& t : tasks) {
    t.join();  // blocks until that worker has ended
    if (t.exitcode() != 0) {
      say("worker %s (pid %d) ended with exit code %d\n", t.name().c_str(), int(t.pid()), t.exitcode().value_or(-1));
      ok = false;
    }
  }
  const auto left = ipckit::active_children().size();
  say("==================== All workers have finished! ====================\n");
  say("active children: %zu\n", left);
  say("elapsed: %lld ms (%d workers x %d ms, one after another, would take %lld ms)\n", ms_since(t0), workers, sleep_ms,
      static_cast<long long>(workers) * sleep_ms);
  if (left != 0) ok = false;
  return ok ? 0 : 1;
}

// --- daemon mode ---------------------------------------------------------------

// Waits for the workers, re-parented to us, and returns how many were killed
// by SIGKILL before the deadline; reports the others.
int reap_workers(const std::vector<pid_t>& pids, Clock::time_point deadline) {
  int killed = 0;
  std::vector<pid_t> pending = pids;
  while (!pending.empty() && Clock::now() < deadline) {
    std::erase_if(pending, [&](pid_t pid) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) != pid) return false;  // running, or not yet re-parented
      if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        ++killed;
      } else {
        say("top: worker pid %d ended on its own (status %d), not with its parent\n", int(pid), st);
      }
      return true;
    });
    if (!pending.empty()) std::this_thread::sleep_for(2ms);
  }
  for (pid_t pid : pending) {
    say("top: worker pid %d is still alive: the daemon outlived its parent; killing it\n", int(pid));
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
  return killed;
}

int run_daemon(int workers, bool kill_main) {
  // Orphans are re-parented to the nearest "subreaper" ancestor instead of
  // PID 1 (which, in a container, may never reap them): the workers come to
  // us when "main" dies, and waitpid tells us exactly how each one ended.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  PidPipe pids;
  PidPipe go;  // one token from top to main: "you may exit now"
  ipckit::Process main_proc(
      [&] {
        std::vector<ipckit::Process> tasks;
        for (int i = 0; i < workers; ++i) {
          tasks.emplace_back(
              [i, &pids] {
                say("Running on number: %d\n", i);
                pids.send(::getpid());
                std::this_thread::sleep_for(kDaemonSleep);
              },
              ipckit::ProcessOptions{.name = "worker-" + std::to_string(i), .daemon = true});
          tasks.back().start();
        }
        say("main (pid %d): started %d daemon workers; active children: %zu\n", int(::getpid()), workers,
            ipckit::active_children().size());
        (void)go.receive(Clock::now() + 60s);  // the top process has heard from every worker
        say("main: exiting without joining the daemon workers\n");
        // Returning ends this process; each daemon gets SIGKILL from the kernel.
      },
      {.name = "main", .daemon = false});
  main_proc.start();

  // Every worker reports once it runs.
  std::vector<pid_t> worker_pids;
  const auto report_deadline = Clock::now() + 30s;
  while (static_cast<int>(worker_pids.size()) < workers) {
    auto pid = pids.receive(report_deadline);
    if (!pid) break;
    worker_pids.push_back(*pid);
  }
  bool ok = static_cast<int>(worker_pids.size()) == workers;
  if (!ok) say("top: only %zu of %d workers reported within 30 s\n", worker_pids.size(), workers);

  if (kill_main) {
    say("top: SIGKILL to main (pid %d)\n", int(main_proc.pid()));
    main_proc.kill();
  } else {
    go.send(0);
  }
  if (!main_proc.join(30s)) {
    say("top: main did not end within 30 s; killing it\n");
    main_proc.kill();
    main_proc.join();
    ok = false;
  }
  const auto main_ended = Clock::now();
  say("top: main ended with exit code %d\n", main_proc.exitcode().value_or(-1000));

  const int killed = reap_workers(worker_pids, main_ended + 10s);
  if (killed == workers && ok) {
    say("top: all %d daemon workers are gone (killed by SIGKILL) %lld ms after main ended\n", workers,
        ms_since(main_ended));
    return 0;
  }
  say("top: FAILED: %d of %d daemon workers were killed with their parent\n", killed, workers);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Join and Daemon: N worker processes, joined, or daemons that die with their parent"};
  int workers = 50;
  int sleep_ms = 300;
  bool daemon = false;
  bool kill_main = false;
  app.add_option("-w,--workers", workers, "number of worker processes")->check(CLI::Range(1, 2000));
  app.add_option("-s,--sleep-ms", sleep_ms, "how long each worker sleeps (join mode)")->check(CLI::Range(0, 600000));
  auto* daemon_flag = app.add_flag("-d,--daemon", daemon,
                                   "daemon workers that sleep for a minute; show they die when their parent ends");
  app.add_flag("--kill-main", kill_main, "with --daemon: end the parent with SIGKILL instead of a return")
      ->needs(daemon_flag);
  CLI11_PARSE(app, argc, argv);

  try {
    return daemon ? run_daemon(workers, kill_main) : run_join(workers, sleep_ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "join_daemon: %s\n", e.what());
    return 1;
  }
}
