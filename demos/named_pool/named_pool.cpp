// named_pool — a pool served by separate worker programs, joined by name.
//
// The client side of Python's concurrent.futures, with workers that are not
// forks of the client: this demo starts `--workers` copies of the
// named_pool_worker program with
//
//   ipckit::Process::exec({worker, "--pool", name})   // it calls ipckit::serve_pool(name)
//
// and connects to the pool as a client (ipckit::ProcessPool::connect(name)).
// Tasks travel by the name they are registered under (IPCKIT_TASK in
// tasks.hpp, compiled into both programs). Then:
//   1. the first client submits `--tasks` tasks; when a third of the results
//      are in, one worker program is killed (SIGKILL) in the middle of a task.
//      With .retries = 3 the task it ran runs again on another worker: the
//      client still gets every result;
//   2. the first client shuts down (the workers stay), and a second client
//      connects and is served by the same, surviving, workers;
//   3. close_pool(name) ends the worker programs.
// Exit code 0 when every result was right, the killed worker's task was run
// again, the second client was served, and the surviving workers exited 0
// after close_pool; 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "demo.hpp"
#include "tasks.hpp"

#ifndef NAMED_POOL_WORKER
#define NAMED_POOL_WORKER "named_pool_worker"  // else searched in PATH
#endif

using namespace std::chrono_literals;
using named_pool_demo::Answer;
using named_pool_demo::slow_square;

namespace {

// Gets and checks the answers of tasks [first, first + n); counts them per worker pid.
bool check_answers(std::vector<ipckit::Future<Answer>>& futures, int first, std::map<int, int>& per_worker,
                   std::vector<Answer>* answers = nullptr) {
  for (std::size_t k = 0; k < futures.size(); ++k) {
    const int n = first + static_cast<int>(k);
    try {
      const Answer a = futures[k].get(30s);
      if (a.n != n || a.square != static_cast<long>(n) * n) {
        demo::say("FAILED: task %d came back as %d -> %ld\n", n, a.n, a.square);
        return false;
      }
      ++per_worker[a.worker_pid];
      if (answers != nullptr) answers->push_back(a);
    } catch (const ipckit::Error& e) {
      demo::say("FAILED: task %d: %s\n", n, e.what());
      return false;
    }
  }
  return true;
}

void print_counts(const char* who, const std::map<int, int>& per_worker) {
  for (const auto& [pid, n] : per_worker) demo::say("%s: worker pid %d ran %d tasks\n", who, pid, n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A named pool served by worker programs started with Process::exec; one is killed mid-task"};
  int workers = 3, tasks = 200, work_us = 3000;
  std::string worker_path = NAMED_POOL_WORKER;
  app.add_option("-w,--workers", workers, "worker programs to start")->check(CLI::Range(2, 16));
  app.add_option("-t,--tasks", tasks, "tasks the first client submits")->check(CLI::Range(10, 100000));
  app.add_option("--work-us", work_us, "how long a task takes")->check(CLI::Range(0, 1000000));
  app.add_option("--worker", worker_path, "the worker program")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string name = "demo-named-pool-" + std::to_string(::getpid());
  std::vector<ipckit::Process> procs;
  bool ok = true;
  try {
    for (int k = 0; k < workers; ++k)
      procs.push_back(ipckit::Process::exec({worker_path, "--pool", name},
                                            {.name = "worker-" + std::to_string(k + 1), .daemon = true}));
    demo::say("client: started %d worker programs (%s) for pool '%s'\n", workers, worker_path.c_str(), name.c_str());

    // 1. The first client; a worker program dies in the middle of a task.
    std::map<int, int> per_worker;
    {
      ipckit::ProcessPool client = ipckit::ProcessPool::connect(name, {.retries = 3});
      std::vector<ipckit::Future<Answer>> futures;
      for (int n = 0; n < tasks; ++n) futures.push_back(client.submit(slow_square, n, work_us));
      demo::say("client 1: submitted %d tasks\n", tasks);
      for (int n = 0; n < tasks / 3; ++n) (void)futures[n].wait(30s);
      // The victim: the first worker program, once stats (read from the pool's segment) show it running a task.
      const pid_t victim = procs[0].pid();
      const auto deadline = demo::Clock::now() + 10s;
      std::uint64_t victim_task = 0;  // the task's number: submit order, from 1
      while (victim_task == 0 && demo::Clock::now() < deadline)
        for (const ipckit::PoolWorkerStats& w : client.stats().per_worker)
          if (w.pid == victim) victim_task = w.task;
      const bool busy = victim_task != 0;
      procs[0].kill();
      demo::say("client 1: killed worker pid %d %s\n", static_cast<int>(victim),
                busy ? "in the middle of a task" : "(it was idle)");
      std::vector<Answer> answers;
      ok = check_answers(futures, 0, per_worker, &answers) && ok;
      const ipckit::PoolStats st = client.stats();
      demo::say("client 1: %d results, all right: %s; tasks failed %llu; worker programs serving now %u\n", tasks,
                ok ? "yes" : "no", static_cast<unsigned long long>(st.failed), st.workers_alive);
      print_counts("client 1", per_worker);
      if (busy && ok) {
        const Answer& a = answers[victim_task - 1];
        if (a.worker_pid != victim)
          demo::say("client 1: task %d, killed with its worker, ran again on worker pid %d (retries)\n", a.n,
                    a.worker_pid);
        else
          demo::say("client 1: task %d finished just before its worker was killed\n", a.n);
      }
      client.shutdown();  // waits for its tasks; the workers stay
    }

    // 2. A second client, served by the surviving workers.
    {
      ipckit::ProcessPool client = ipckit::ProcessPool::connect(name);
      std::vector<ipckit::Future<Answer>> futures;
      for (int n = 0; n < 50; ++n) futures.push_back(client.submit(slow_square, 1000 + n, work_us));
      std::map<int, int> second;
      ok = check_answers(futures, 1000, second) && ok;
      print_counts("client 2", second);
      if (second.count(procs[0].pid()) != 0) {
        demo::say("FAILED: the killed worker served client 2\n");
        ok = false;
      }
    }

    // 3. Closing the pool ends the worker programs.
    ipckit::close_pool(name);
    for (std::size_t k = 0; k < procs.size(); ++k) {
      if (!procs[k].join(10s)) {
        demo::say("FAILED: %s did not exit within 10 s of close_pool\n", procs[k].name().c_str());
        procs[k].kill();
        procs[k].join();
        ok = false;
        continue;
      }
      const int code = procs[k].exitcode().value_or(-1000);
      const int want = k == 0 ? -9 : 0;
      demo::say("client: %s exited with %d\n", procs[k].name().c_str(), code);
      if (code != want) ok = false;
    }
  } catch (const ipckit::Error& e) {
    demo::say("FAILED: %s\n", e.what());
    ok = false;
    (void)ipckit::close_pool(name);
    for (auto& p : procs) p.kill();
  }
  demo::say(ok ? "named_pool: OK\n" : "named_pool: FAILED\n");
  return ok ? 0 : 1;
}
