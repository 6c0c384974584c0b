// work_queue_consumer — one consumer of the work_queue demo, a program of its own.
//
// Started by the work_queue producer (ipckit::Process::exec) or by hand; it
// meets the producer by segment name alone:
//
//   work_queue_consumer --segment demo-work-queue-1234 --index 2
//
// It gets jobs from the JoinableQueue "jobs", adds up each job's numbers,
// writes the sum into the shared "results" Array, and calls task_done() —
// after the result is written, so a producer whose join() returned sees every
// result. When the producer closes the queue it drains what is left, get()
// throws ipckit::Closed, and it exits with code 0. Any other ipckit error
// (no such segment, a mismatched object, ...) is printed, exit code 1.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <numeric>
#include <string>
#include <thread>

#include "job.hpp"

int main(int argc, char** argv) {
  CLI::App app{"A work_queue consumer: gets jobs from a JoinableQueue in a named segment, does them, task_done()"};
  std::string name;
  int index = 0;
  app.add_option("--segment", name, "segment the producer created")->required();
  app.add_option("--index", index, "this consumer's number, 1..consumers")->required()->check(CLI::Range(1, 1024));
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, interleaved sensibly with the other consumers

  const std::string me = "consumer-" + std::to_string(index);
  try {
    auto seg = ipckit::Segment::open(name);
    const auto cfg = seg.value<work_queue::Config>(work_queue::kConfig).get();
    if (cfg.jobs <= 0 || index > cfg.consumers) {
      std::fprintf(stderr, "%s: segment '%s' has no usable config (jobs %d, consumers %d)\n", me.c_str(), name.c_str(),
                   cfg.jobs, cfg.consumers);
      return 1;
    }
    auto jobs = seg.joinable_queue<work_queue::Job>(work_queue::kJobs, work_queue::job_queue_options());
    auto results = seg.array<std::int64_t>(work_queue::kResults, cfg.jobs);
    auto times_done = seg.array<std::int32_t>(work_queue::kTimesDone, cfg.jobs);
    auto done_by = seg.array<std::int32_t>(work_queue::kDoneBy, cfg.jobs);
    auto per_consumer = seg.array<std::int64_t>(work_queue::kPerConsumer, cfg.consumers);

    std::printf("%s (pid %d) started, waiting for jobs\n", me.c_str(), ::getpid());
    std::int64_t mine = 0;
    for (;;) {
      work_queue::Job job;
      try {
        job = jobs.get();
      } catch (const ipckit::Closed&) {
        break;  // closed and drained: no more work will come
      }
      const std::int64_t sum = std::accumulate(job.numbers.begin(), job.numbers.end(), std::int64_t{0});
      if (cfg.work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(cfg.work_us));
      if (job.id >= 0 && job.id < cfg.jobs) {
        results[job.id] = sum;
        done_by[job.id] = index;
        std::atomic_ref<std::int32_t>(times_done[job.id]).fetch_add(1);
      }
      ++mine;
      if (mine <= cfg.show)
        std::printf("%s did job %3d: %2zu numbers, sum %lld\n", me.c_str(), job.id, job.numbers.size(),
                    static_cast<long long>(sum));
      jobs.task_done();  // after the result is written
    }
    per_consumer[index - 1] = mine;
    std::printf("%s: queue closed after %lld jobs, exiting\n", me.c_str(), static_cast<long long>(mine));
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "%s: %s\n", me.c_str(), e.what());
    return 1;
  }
}
