// work_queue — a JoinableQueue of jobs done by separate consumer programs.
//
// Python's JoinableQueue pattern (q.put(job) ... q.join(), consumers call
// q.task_done()), between programs that only share a segment name. This
// producer creates the segment, writes the run's Config into it, and starts
// `--consumers` copies of the work_queue_consumer binary with
//
//   ipckit::Process::exec({consumer, "--segment", name, "--index", k})
//
// It then puts `--jobs` jobs (lists of random numbers; a consumer adds them
// up and writes the sum into a shared Array, then calls task_done()), and
// waits in join() until every job has been marked done. Then it closes the
// queue, which ends the consumers: they drain what is left, get Closed, exit 0.
//
// The claim it checks (it runs as a test): join() returned (within
// `--timeout-s`, a safety net) with no unfinished and no abandoned tasks;
// every job was done exactly once and its result equals the sum the producer
// computed itself; the consumers' own counts add up to the number of jobs;
// after close() every consumer exited with code 0. Exit code 0 when so,
// 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "job.hpp"

#ifndef WORK_QUEUE_CONSUMER
#define WORK_QUEUE_CONSUMER "work_queue_consumer"  // else searched in PATH
#endif

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"A producer, a JoinableQueue of jobs, and consumer programs started with Process::exec"};
  int consumers = 3, jobs = 100, work_us = 1000, show = 3, timeout_s = 30;
  unsigned seed = 1;
  std::string consumer_path = WORK_QUEUE_CONSUMER;
  app.add_option("-c,--consumers", consumers, "consumer programs to start")->check(CLI::Range(1, 64));
  app.add_option("-j,--jobs", jobs, "jobs to put")->check(CLI::Range(1, 1'000'000));
  app.add_option("--work-us", work_us, "extra time a consumer spends on each job")->check(CLI::Range(0, 1'000'000));
  app.add_option("--show", show, "jobs each consumer prints")->check(CLI::Range(0, 1'000'000));
  app.add_option("--seed", seed, "seed of the jobs' random numbers");
  app.add_option("--timeout-s", timeout_s, "safety net: fail if the jobs are not all done by then")
      ->check(CLI::Range(1, 3600));
  app.add_option("--consumer", consumer_path, "the consumer program")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const std::string name = "demo-work-queue-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, (2 << 20) + std::size_t(jobs) * 16);
    ipckit::SegmentRemover remove(name);

    // Everything a consumer opens exists before the first one starts.
    seg.value<work_queue::Config>(work_queue::kConfig).set({jobs, consumers, work_us, show});
    auto q = seg.joinable_queue<work_queue::Job>(work_queue::kJobs, work_queue::job_queue_options());
    auto results = seg.array<std::int64_t>(work_queue::kResults, jobs);
    auto times_done = seg.array<std::int32_t>(work_queue::kTimesDone, jobs);
    auto done_by = seg.array<std::int32_t>(work_queue::kDoneBy, jobs);
    auto per_consumer = seg.array<std::int64_t>(work_queue::kPerConsumer, consumers);

    std::vector<ipckit::Process> procs;
    for (int k = 1; k <= consumers; ++k)
      procs.push_back(ipckit::Process::exec({consumer_path, "--segment", name, "--index", std::to_string(k)},
                                            {.name = "consumer-" + std::to_string(k), .daemon = true}));
    std::printf("producer: started %d consumer programs (%s) on segment '%s'\n", consumers, consumer_path.c_str(),
                name.c_str());

    auto stop_all = [&] {
      q.close();
      for (auto& p : procs) p.kill();
      for (auto& p : procs) p.join();
    };

    // The jobs, and the answer the producer expects for each.
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> len(1, 40);
    std::uniform_int_distribution<std::int64_t> num(-1'000'000, 1'000'000);
    std::vector<std::int64_t> expected(jobs);
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::seconds(timeout_s);  // the safety net, for put() and join()
    auto left = [&] { return std::max(deadline - Clock::now(), Clock::duration::zero()); };
    for (int id = 0; id < jobs; ++id) {
      work_queue::Job job{id, {}};
      job.numbers.resize(len(rng));
      for (auto& x : job.numbers) x = num(rng);
      expected[id] = std::accumulate(job.numbers.begin(), job.numbers.end(), std::int64_t{0});
      try {
        q.put(job, left());  // blocks while the queue is full
      } catch (const ipckit::Full&) {
        std::printf("FAILED: no room for job %d within %d s: the consumers are not taking jobs\n", id, timeout_s);
        stop_all();
        return 1;
      }
    }
    std::printf("producer: put %d jobs; %llu not done yet; join()...\n", jobs,
                static_cast<unsigned long long>(q.unfinished_tasks()));

    if (!q.join(left())) {
      std::printf("FAILED: join() did not return within %d s: %llu tasks unfinished, %zu jobs still queued\n",
                  timeout_s, static_cast<unsigned long long>(q.unfinished_tasks()), q.qsize());
      for (auto& p : procs)
        if (!p.is_alive()) std::printf("  %s ended early with code %d\n", p.name().c_str(), p.exitcode().value_or(0));
      stop_all();
      return 1;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("producer: join() returned after %.0f ms: all %d jobs done (unfinished %llu, abandoned %llu)\n",
                secs * 1e3, jobs, static_cast<unsigned long long>(q.unfinished_tasks()),
                static_cast<unsigned long long>(q.abandoned_tasks()));

    // join() returned, so every task_done() happened, each after its result was written.
    int missing = 0, doubled = 0, wrong = 0;
    std::vector<std::int64_t> by(consumers + 1, 0);
    for (int id = 0; id < jobs; ++id) {
      missing += times_done[id] == 0;
      doubled += times_done[id] > 1;
      wrong += times_done[id] == 1 && results[id] != expected[id];
      if (done_by[id] >= 1 && done_by[id] <= consumers) ++by[done_by[id]];
    }

    // Closing ends the consumers: the queue is empty, so their get() throws Closed.
    q.close();
    std::printf("producer: closed the queue; the consumers get Closed and exit\n");
    const auto end_by = Clock::now() + 10s;
    bool hung = false;
    for (auto& p : procs) hung |= !p.join(std::max(end_by - Clock::now(), Clock::duration::zero()));
    if (hung) {
      std::printf("FAILED: consumers still running 10 s after close():");
      for (auto& p : procs)
        if (p.is_alive()) std::printf(" %s", p.name().c_str());
      std::printf("\n");
      stop_all();
      return 1;
    }

    std::printf("\n");
    bool clean = true;
    std::int64_t reported = 0;
    for (int k = 1; k <= consumers; ++k) {
      const auto code = procs[k - 1].exitcode();
      clean = clean && code == 0;
      reported += per_consumer[k - 1];
      std::printf("consumer-%d did %3lld jobs, exit code %d\n", k, static_cast<long long>(per_consumer[k - 1]),
                  code.value_or(-1));
    }
    bool ok = clean;
    if (!clean) std::printf("FAILED: a consumer did not exit with code 0\n");
    if (q.unfinished_tasks() != 0 || q.abandoned_tasks() != 0) {
      std::printf("FAILED: %llu unfinished and %llu abandoned tasks after join()\n",
                  static_cast<unsigned long long>(q.unfinished_tasks()),
                  static_cast<unsigned long long>(q.abandoned_tasks()));
      ok = false;
    }
    if (missing || doubled || wrong) {
      std::printf("FAILED: %d jobs never done, %d done more than once, %d with a wrong sum\n", missing, doubled, wrong);
      ok = false;
    }
    if (reported != jobs) {
      std::printf("FAILED: the consumers report %lld jobs done, %d were put\n", static_cast<long long>(reported), jobs);
      ok = false;
    }
    for (int k = 1; k <= consumers; ++k)
      if (by[k] != per_consumer[k - 1]) {
        std::printf("FAILED: consumer-%d says it did %lld jobs, the results say %lld\n", k,
                    static_cast<long long>(per_consumer[k - 1]), static_cast<long long>(by[k]));
        ok = false;
      }
    if (!ok) return 1;
    std::printf("all %d jobs done exactly once with the right sums; all %d consumers exited cleanly\n", jobs,
                consumers);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "work_queue: %s\n", e.what());
    return 1;
  }
}
