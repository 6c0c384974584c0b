// pool — the seed's concurrent.futures example across processes, with
// ipckit::ProcessPool:
//
//   def task(n): return n * n
//   with ThreadPoolExecutor(max_workers=3) as executor:
//       future = executor.submit(task, 5)
//       print(future.result())                 # 25
//
// then what the seed warns about in "Considerations for Using Thread Pools",
// and where ipckit goes further than Python:
//   - executor.map(task, range(1, 101)): the squares in input order, in
//     chunks of 8 inputs per task;
//   - a task that throws: its future's get() throws TaskError (type and
//     message), the pool goes on;
//   - a worker killed in the middle of a task (it SIGKILLs itself): only that
//     future fails, with WorkerDied; the pool starts a new worker and every
//     other task of the batch submitted around it completes (Python's
//     ProcessPoolExecutor would break the whole pool);
//   - backpressure: with max_pending small, submit() waits for the workers
//     instead of letting tasks pile up;
//   - shutdown(): waits for the work, then submit() throws Closed.
//
// The claim it checks (it runs as a test): 25; map over 1..100 sums to
// 338350 with the squares in input order; every square of the batch
// right; exactly the killed task failed, with WorkerDied, and the pool kept
// its workers; the throwing task gave TaskError; submit blocked at the
// bound. Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <ranges>
#include <stdexcept>
#include <vector>

#include "demo.hpp"

namespace {

long long task(long long n) { return n * n; }

long long task_that_dies(long long n) {
  ::raise(SIGKILL);  // an OOM kill or a segfault in the task, as the pool sees it
  return n;
}

int task_that_throws(int n) { throw std::invalid_argument("no square for " + std::to_string(n) + " today"); }

long long task_that_hangs(long long n) {
  for (;;) ::pause();  // a deadlock or an endless loop in the task
  return n;
}

long long slow_task(long long n) {
  const auto until = demo::Clock::now() + std::chrono::milliseconds(2);
  while (demo::Clock::now() < until) {
  }
  return n * n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pool — Python's concurrent.futures executor.submit(task, 5) across processes, and a dead worker"};
  unsigned workers = 3;
  int batch = 1000;
  app.add_option("--workers", workers, "worker processes")->check(CLI::Range(1, 64));
  app.add_option("--batch", batch, "tasks submitted around the worker that dies")->check(CLI::Range(1, 1000000));
  CLI11_PARSE(app, argc, argv);
  demo::Verdict verdict;
  const auto expect = [&](bool cond, const char* what) { verdict.expect(cond, what); };

  ipckit::ProcessPool pool({.workers = workers, .name = "demo"});
  demo::say("pool '%s': %u worker processes\n", pool.name().c_str(), pool.workers());

  ipckit::Future<long long> future = pool.submit(task, 5);
  const long long five = future.get();
  demo::say("executor.submit(task, 5).result() -> %lld\n", five);
  expect(five == 25, "task(5) is 25");

  // map over 1..100, in input order, in chunks (Python's executor.map(task, range(1, 101), chunksize=8)).
  {
    long long sum = 0;
    long long n = 0;
    bool in_order = true;
    for (long long sq : pool.map(task, std::views::iota(1LL, 101LL), {.chunksize = 8})) {
      ++n;
      in_order = in_order && sq == n * n;
      sum += sq;
    }
    demo::say("sum(map(task, 1..100)) -> %lld (%lld results, %s)\n", sum, n,
              in_order ? "in input order" : "OUT OF ORDER");
    expect(sum == 338350 && n == 100 && in_order, "map over 1..100 gives the squares in order, summing to 338350");
  }

  try {
    (void)pool.submit(task_that_throws, 7).get();
    expect(false, "a throwing task throws from get()");
  } catch (const ipckit::TaskError& e) {
    demo::say("a task that throws: TaskError, type %s, message '%s'\n", e.type_name().c_str(), e.message().c_str());
    expect(e.type_name() == "std::invalid_argument", "the original type travels");
  }

  // A batch with a worker dying in its middle.
  const auto t0 = demo::Clock::now();
  std::vector<ipckit::Future<long long>> squares;
  for (int i = 0; i < batch / 2; ++i) squares.push_back(pool.submit(task, i));
  ipckit::Future<long long> doomed = pool.submit(task_that_dies, 0);
  for (int i = batch / 2; i < batch; ++i) squares.push_back(pool.submit(task, i));
  int right = 0;
  for (int i = 0; i < batch; ++i) right += squares[static_cast<std::size_t>(i)].get() == 1LL * i * i ? 1 : 0;
  try {
    (void)doomed.get();
    expect(false, "the task whose worker died fails");
  } catch (const ipckit::WorkerDied& e) {
    demo::say("the task whose worker was killed: WorkerDied: %s\n", e.what());
  }
  demo::say("the other %d tasks of the batch: %d right, in %lld ms; workers replaced: %llu, alive: %zu\n", batch, right,
            demo::ms_since(t0), static_cast<unsigned long long>(pool.restarts()), pool.worker_pids().size());
  expect(right == batch, "every other task of the batch completes");
  expect(pool.restarts() == 1, "one worker was replaced");

  // A task timeout: a task stuck past it has its worker killed and replaced.
  {
    ipckit::ProcessPool timed(
        {.workers = 1, .max_pending = 1, .name = "timed", .task_timeout = std::chrono::milliseconds(200)});
    ipckit::Future<long long> stuck = timed.submit(task_that_hangs, 1);
    const auto s0 = demo::Clock::now();
    // Meanwhile the one worker is busy and one task may wait: try_submit
    // says no instead of blocking, and the waiting task can be cancelled.
    ipckit::Future<long long> waiting = timed.submit(task, 2);
    const bool refused = !timed.try_submit(task, 3).has_value();
    const bool cancelled = waiting.cancel();
    demo::say("with the worker busy and max_pending = 1 task waiting: try_submit %s; cancel() of the waiting one: %s\n",
              refused ? "refused (nullopt)" : "accepted", cancelled ? "cancelled" : "too late");
    expect(refused && cancelled && waiting.cancelled(), "try_submit refuses at max_pending, cancel() of a queued task");
    try {
      (void)stuck.get();
      expect(false, "a task past its timeout fails");
    } catch (const ipckit::Timeout& e) {
      demo::say("a task stuck past task_timeout = 200 ms: Timeout after %lld ms: %s\n", demo::ms_since(s0), e.what());
    }
    expect(timed.submit(task, 6).get() == 36, "the pool goes on after a timeout");
    expect(timed.restarts() == 1, "the stuck worker was replaced");
  }

  // Backpressure: a pool that holds at most 4 waiting tasks.
  {
    ipckit::ProcessPool small({.workers = 1, .max_pending = 4, .name = "small"});
    std::vector<ipckit::Future<long long>> slow;
    const auto s0 = demo::Clock::now();
    for (int i = 0; i < 40; ++i) slow.push_back(small.submit(slow_task, i));
    const long long submit_ms = demo::ms_since(s0);
    for (auto& f : slow) (void)f.get();
    demo::say(
        "backpressure: 40 tasks of 2 ms into a pool holding 4 waiting: submitting took %lld ms (it waited "
        "for the worker), all done after %lld ms\n",
        submit_ms, demo::ms_since(s0));
    expect(submit_ms >= 40, "submit waits for room at max_pending");
  }

  pool.shutdown();
  try {
    (void)pool.submit(task, 1);
    expect(false, "submit after shutdown throws");
  } catch (const ipckit::Closed&) {
    demo::say("after shutdown(): submit throws Closed\n");
  }
  return verdict.finish();
}
