// redis_workers — the producer/consumer and pool demos again, over Redis
// Streams instead of shared memory: the same JoinableQueue and ProcessPool
// API, opened through a Hub (a Redis URL), so that the processes could be on
// any machines that reach the server. Here they are forked on one machine.
//
//   1. Producer/consumer: a producer process puts --jobs Jobs into
//      hub.joinable_queue<Job>("jobs-PID"); three consumer processes get,
//      work, put a Result into a results queue and task_done(). One consumer
//      stops holding a job (got it, no task_done) and the parent SIGKILLs it.
//      After the lease (visibility_timeout, 1 s) Redis delivers that job to
//      another consumer, which sees delivery_counts() == 2. The producer's
//      join() returns once every job is done; the tally has each job's result
//      exactly once.
//   2. The pool: three worker processes run ipckit::redis::serve_pool; the
//      client is an ipckit::ProcessPool from ipckit::redis::pool(). Tasks,
//      map(), a task that throws (TaskError), and a worker SIGKILLed while it
//      runs a long task: with .retries = 1 the task runs again on another
//      worker, and its future completes once. close_pool ends the workers.
//      At least once here too: a task may run twice (its worker died after
//      running it, before its result went out), but its future completes once.
//
// With --url it uses that server (its keys are named after this process's
// pid and removed at the end); without, it starts its own redis-server on a
// free loopback port in a temporary directory and stops it at the end.
//
// The claim it checks (it runs as a test): every job's result exactly once
// and right, the killed consumer's job redelivered with count 2, join()
// returned; every pool task's future completed exactly once and right, the
// killed worker's task re-run on a survivor, TaskError for the throwing
// task, the surviving workers ended 0 after close_pool. Exit code 0 when so.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ipckit/ipckit.hpp>
#include <ipckit/redis.hpp>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"
#include "redis_server.hpp"  // tests/redis: a throw-away redis-server

using namespace std::chrono_literals;
namespace rd = ipckit::redis;

namespace {

// demo::Verdict, and whether every check so far passed (for the summary line).
class Checks {
 public:
  void expect(bool cond, const char* what) {
    verdict_.expect(cond, what);
    ok_ = ok_ && cond;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  int finish() const { return verdict_.finish(); }

 private:
  demo::Verdict verdict_;
  bool ok_ = true;
};

// ---- part 1: the queues ------------------------------------------------------

// Plain structs travel as bytes (producer and consumer are built from the same T).
struct Job {
  std::int32_t id;
  std::int32_t payload;  // the number whose Collatz steps the consumer counts
};
struct Result {
  std::int32_t job;
  std::int32_t value;       // the work's answer
  std::int32_t consumer;    // 1-based
  std::int32_t deliveries;  // delivery_counts() when it was got
};
// A consumer tells the parent it is holding a job it will never finish.
struct Holding {
  std::int32_t consumer;
  std::int32_t pid;
  std::int32_t job;
};

std::int32_t collatz_steps(std::int64_t n) {
  std::int32_t steps = 0;
  for (; n > 1; ++steps) n = n % 2 ? 3 * n + 1 : n / 2;
  return steps;
}
std::int32_t payload_of(int id) { return 1000 + id * 37; }

struct Names {
  std::string jobs, results, events, pool;
};

// Every process opens each queue with the same T, kind and options.
const rd::QueueOptions kQueueOptions{.visibility_timeout = 1s, .max_deliveries = 5};

// A consumer process. Delivery is AT LEAST ONCE: a job whose consumer dies
// before task_done() is delivered again, so a job may be worked on twice.
// The work is made idempotent by job id: its answer is a pure function of the
// job, and the result is keyed by job id (the tally stores one result per
// job, as an upsert into a database would), so a second run changes nothing.
void consume(const std::string& url, const Names& n, int me, int stop_after, int work_us) {
  rd::Hub hub(url);
  auto jobs = hub.joinable_queue<Job>(n.jobs, kQueueOptions);
  auto results = hub.queue<Result>(n.results, kQueueOptions);
  int got = 0;
  for (;;) {
    Job j{};
    try {
      j = jobs.get();  // blocks while empty; Closed once closed and drained
    } catch (const ipckit::Closed&) {
      break;
    }
    ++got;
    const auto deliveries = static_cast<std::int32_t>(jobs.delivery_counts().at(0));
    if (deliveries > 1)
      demo::say(
          "consumer-%d (pid %d): got job %d with delivery_counts() == %d: its first consumer died holding it; "
          "doing it again\n",
          me, static_cast<int>(::getpid()), j.id, deliveries);
    if (got == stop_after) {
      // The victim: it holds this job (got, not task_done) until the parent kills it.
      demo::say("consumer-%d (pid %d): got job %d and stops before task_done()\n", me, static_cast<int>(::getpid()),
                j.id);
      hub.queue<Holding>(n.events, kQueueOptions).put({me, static_cast<std::int32_t>(::getpid()), j.id});
      for (;;) ::pause();
    }
    if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
    results.put({j.id, collatz_steps(j.payload), me, deliveries});
    jobs.task_done();
  }
  demo::say("consumer-%d (pid %d): the queue is closed; it did %d jobs\n", me, static_cast<int>(::getpid()), got);
}

void produce(const std::string& url, const Names& n, int count) {
  rd::Hub hub(url);
  auto jobs = hub.joinable_queue<Job>(n.jobs, kQueueOptions);
  std::vector<Job> batch;
  for (int id = 0; id < count; ++id) batch.push_back({id, payload_of(id)});
  jobs.put_many(batch);
  demo::say("producer (pid %d): put %d jobs; join()...\n", static_cast<int>(::getpid()), count);
  const auto t0 = demo::Clock::now();
  if (!jobs.join(30s)) throw std::runtime_error("join() did not return within 30 s");
  demo::say("producer (pid %d): join() returned after %lld ms: every job is task_done\n", static_cast<int>(::getpid()),
            demo::ms_since(t0));
}

struct QueueTally {
  int jobs = 0, redelivered = 0;
};

std::optional<QueueTally> queue_part(const std::string& url, const Names& n, int count, int work_us, Checks& verdict) {
  constexpr int kConsumers = 3, kVictim = 2, kStopAfter = 5;
  demo::say("\n== 1. producer/consumer over Redis: 1 producer, %d consumers, %d jobs in '%s' ==\n", kConsumers, count,
            n.jobs.c_str());
  demo::say("(forked on this machine; in real use each could run on any machine that reaches the server)\n");
  rd::Hub hub(url);
  auto jobs = hub.joinable_queue<Job>(n.jobs, kQueueOptions);
  auto results = hub.queue<Result>(n.results, kQueueOptions);
  auto events = hub.queue<Holding>(n.events, kQueueOptions);

  std::vector<ipckit::Process> cons;
  for (int c = 1; c <= kConsumers; ++c) {
    const int stop_after = c == kVictim ? kStopAfter : 0;
    cons.emplace_back([=] { consume(url, n, c, stop_after, work_us); },
                      ipckit::ProcessOptions{.name = "consumer-" + std::to_string(c), .daemon = true});
    cons.back().start();
  }
  ipckit::Process producer([=] { produce(url, n, count); }, {.name = "producer", .daemon = true});
  producer.start();

  const auto deadline = demo::Clock::now() + 30s;
  const auto left = [&] { return std::max(deadline - demo::Clock::now(), demo::Clock::duration::zero()); };
  auto give_up = [&](const char* what) {
    demo::say("FAILED: %s\n", what);
    producer.kill();
    for (auto& c : cons) c.kill();
    return std::nullopt;
  };

  // The victim says it holds a job; kill it there.
  Holding held{};
  try {
    held = events.get(10s);
  } catch (const ipckit::Empty&) {
    return give_up("the consumer meant to stop holding a job did not get one within 10 s");
  }
  cons[held.consumer - 1].kill();
  cons[held.consumer - 1].join();
  demo::say("parent: SIGKILLed consumer-%d (pid %d) holding job %d; it comes back after the lease (%lld ms)\n",
            held.consumer, held.pid, held.job, static_cast<long long>(kQueueOptions.visibility_timeout.count()));

  if (!producer.join(left())) return give_up("the producer's join() did not return within 30 s");
  verdict.expect(producer.exitcode() == 0, "the producer ended cleanly");
  // Every job is done: close the queue; the consumers' get() throws Closed.
  jobs.close();
  for (auto& c : cons)
    if (!c.join(left())) return give_up("a consumer did not end after close()");
  for (int c = 1; c <= kConsumers; ++c)
    if (c != held.consumer) verdict.expect(cons[c - 1].exitcode() == 0, "a surviving consumer ended cleanly");

  // The tally: results by job id. A second result for a job would be harmless
  // (the same answer, stored once), but none is expected here: the killed
  // consumer died before putting its result, and the others answer well
  // within the lease. So a job with two results is reported as a failure.
  std::map<int, std::vector<Result>> by_job;
  std::map<int, int> per_consumer;
  for (;;) {
    auto batch = results.try_get_many(512);
    if (batch.empty()) break;
    for (const Result& r : batch) {
      by_job[r.job].push_back(r);
      ++per_consumer[r.consumer];
    }
  }
  results.ack();
  int missing = 0, doubled = 0, wrong = 0, redelivered = 0;
  for (int id = 0; id < count; ++id) {
    const auto it = by_job.find(id);
    if (it == by_job.end()) {
      ++missing;
      continue;
    }
    doubled += it->second.size() > 1;
    for (const Result& r : it->second) {
      wrong += r.value != collatz_steps(payload_of(id));
      redelivered += r.deliveries > 1;
    }
  }
  for (const auto& [c, k] : per_consumer) demo::say("tally: consumer-%d did %d jobs\n", c, k);
  demo::say(
      "tally: %zu distinct jobs with a result; %d missing, %d with more than one result, %d wrong; %d done on a "
      "second delivery; unfinished_tasks() %llu, dead letters %llu\n",
      by_job.size(), missing, doubled, wrong, redelivered, static_cast<unsigned long long>(jobs.unfinished_tasks()),
      static_cast<unsigned long long>(jobs.dead_letters()));
  const auto held_it = by_job.find(held.job);
  const bool redone = held_it != by_job.end() && held_it->second.size() == 1 && held_it->second[0].deliveries == 2 &&
                      held_it->second[0].consumer != held.consumer;
  verdict.expect(by_job.size() == static_cast<std::size_t>(count) && missing == 0,
                 "every job has a result (none lost)");
  verdict.expect(doubled == 0, "no job has two results");
  verdict.expect(wrong == 0, "every result is right");
  verdict.expect(redone, "the killed consumer's job was done by another consumer on its second delivery");
  verdict.expect(redelivered == 1, "exactly one job was redelivered");
  verdict.expect(jobs.unfinished_tasks() == 0 && jobs.dead_letters() == 0, "nothing unfinished, no dead letters");
  return QueueTally{static_cast<int>(by_job.size()), redelivered};
}

// ---- part 2: the pool --------------------------------------------------------

// A plain struct: it travels as bytes.
struct Answer {
  int n;
  long square;
  int pid;  // the worker that ran it
};

Answer square_on(int n) { return {n, static_cast<long>(n) * n, static_cast<int>(::getpid())}; }
long square(long n) { return n * n; }
Answer slow_square(int n, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return square_on(n);
}
int refuse(int n) { throw std::invalid_argument("refusing " + std::to_string(n) + " on purpose"); }

}  // namespace

// Tasks travel by these names; the workers (forks of this program here, any
// program that registers the same names in real use) look them up.
IPCKIT_TASK(square_on);
IPCKIT_TASK(square);
IPCKIT_TASK(slow_square);
IPCKIT_TASK(refuse);

namespace {

struct PoolTally {
  std::uint64_t submitted = 0;  // tasks (map() sends its inputs in chunks, a task each)
  int retried = 0;
};

// Gets every Future of `fs` and checks its answer; counts the answers per worker pid.
bool check_answers(std::vector<ipckit::Future<Answer>>& fs, const std::vector<int>& inputs,
                   std::map<int, int>& per_worker) {
  bool ok = true;
  for (std::size_t k = 0; k < fs.size(); ++k) {
    try {
      const Answer a = fs[k].get(30s);
      if (a.n != inputs[k] || a.square != static_cast<long>(inputs[k]) * inputs[k]) ok = false;
      ++per_worker[a.pid];
    } catch (const ipckit::Error& e) {
      demo::say("FAILED: task %d: %s\n", inputs[k], e.what());
      ok = false;
    }
  }
  return ok;
}

std::optional<PoolTally> pool_part(const std::string& url, const Names& n, int tasks, Checks& verdict) {
  constexpr int kWorkers = 3, kSlowMs = 1500;
  demo::say("\n== 2. ProcessPool over Redis: %d worker processes serve pool '%s' ==\n", kWorkers, n.pool.c_str());
  // Workers and clients agree on visibility_timeout (TypeMismatch otherwise).
  const rd::PoolOptions worker_options{.visibility_timeout = 1s};
  std::vector<ipckit::Process> workers;
  for (int w = 1; w <= kWorkers; ++w) {
    workers.emplace_back(
        [=] {
          demo::say("worker-%d (pid %d): serve_pool('%s')\n", w, static_cast<int>(::getpid()), n.pool.c_str());
          rd::serve_pool(rd::Hub(url), n.pool, worker_options);
          demo::say("worker-%d (pid %d): the pool is closed; exiting\n", w, static_cast<int>(::getpid()));
        },
        ipckit::ProcessOptions{.name = "worker-" + std::to_string(w), .daemon = true});
    workers.back().start();
  }
  auto end_workers = [&] {
    (void)rd::close_pool(rd::Hub(url), n.pool);
    for (auto& w : workers)
      if (!w.join(10s)) w.kill();
  };

  rd::Hub hub(url);
  ipckit::ProcessPool pool = rd::pool(hub, n.pool, {.visibility_timeout = 1s, .retries = 1});
  PoolTally tally;
  std::vector<std::unique_ptr<std::atomic<int>>> completions;  // per task submitted: done callbacks run
  auto track = [&](ipckit::Future<Answer>& f) {
    completions.push_back(std::make_unique<std::atomic<int>>(0));
    f.add_done_callback([c = completions.back().get()](ipckit::Future<Answer>&) { c->fetch_add(1); });
  };

  // a) A batch of tasks.
  std::vector<int> inputs;
  std::vector<ipckit::Future<Answer>> fs;
  for (int k = 0; k < tasks; ++k) {
    inputs.push_back(k);
    fs.push_back(pool.submit(square_on, k));
    track(fs.back());
  }
  std::map<int, int> per_worker;
  const bool batch_ok = check_answers(fs, inputs, per_worker);
  demo::say("client: %d tasks submitted, %d answers, all right: %s\n", tasks, tasks, batch_ok ? "yes" : "no");
  for (const auto& [pid, k] : per_worker) demo::say("client:   worker pid %d ran %d of them\n", pid, k);
  verdict.expect(batch_ok, "every task of the batch answered right");

  // b) map(), in input order, in chunks.
  std::vector<long> xs;
  for (long x = 1; x <= 100; ++x) xs.push_back(x);
  long sum = 0, expect_next = 1;
  bool in_order = true;
  for (long r : pool.map(square, xs, {.chunksize = 8})) {
    in_order = in_order && r == expect_next * expect_next;
    ++expect_next;
    sum += r;
  }
  demo::say("client: map(square, 1..100, chunksize 8) -> sum %ld (in input order: %s)\n", sum, in_order ? "yes" : "no");
  verdict.expect(sum == 338350 && in_order, "map over 1..100 sums to 338350 in input order");

  // c) A task that throws: its future's get() throws TaskError.
  bool task_error = false;
  try {
    (void)pool.submit(refuse, 13).get(10s);
  } catch (const ipckit::TaskError& e) {
    task_error = e.type_name() == "std::invalid_argument";
    demo::say("client: refuse(13) -> ipckit::TaskError: %s\n", e.what());
  }
  verdict.expect(task_error, "the throwing task's future threw TaskError (std::invalid_argument)");

  // d) A worker SIGKILLed in the middle of a long task; more tasks around it.
  std::vector<ipckit::Future<Answer>> slow{pool.submit(slow_square, 7, kSlowMs)};
  track(slow.back());
  // The worker running it: every earlier task's result has arrived, and a
  // worker's record says it runs nothing from the call that posts its last
  // result, so the one worker that shows a task runs this one.
  pid_t victim = 0;
  for (const auto until = demo::Clock::now() + 5s; victim == 0 && demo::Clock::now() < until;) {
    for (const auto& w : pool.stats().per_worker)
      if (w.task != 0) victim = w.pid;
    if (victim == 0) std::this_thread::sleep_for(10ms);
  }
  if (victim == 0) {
    demo::say("FAILED: no worker was seen running slow_square(7) within 5 s\n");
    end_workers();
    return std::nullopt;
  }
  std::vector<int> more_inputs;
  std::vector<ipckit::Future<Answer>> more;
  for (int k = 0; k < 100; ++k) {
    more_inputs.push_back(1000 + k);
    more.push_back(pool.submit(square_on, 1000 + k));
    track(more.back());
  }
  for (auto& w : workers)
    if (w.pid() == victim) w.kill();
  const auto killed_at = demo::Clock::now();
  demo::say("client: SIGKILLed worker pid %d in the middle of slow_square(7, %d ms); 100 more tasks submitted\n",
            static_cast<int>(victim), kSlowMs);
  std::map<int, int> per_worker_after;
  const bool more_ok = check_answers(more, more_inputs, per_worker_after);
  verdict.expect(more_ok, "every task submitted around the kill answered right");
  std::map<int, int> slow_worker;
  const bool slow_ok = check_answers(slow, {7}, slow_worker);
  const long long rerun_ms = demo::ms_since(killed_at);
  const int rerun_pid = slow_worker.empty() ? 0 : slow_worker.begin()->first;
  if (slow_ok)
    demo::say("client: slow_square(7) ran again after its lease, on worker pid %d: 49, %lld ms after the kill\n",
              rerun_pid, rerun_ms);
  verdict.expect(slow_ok && rerun_pid != 0 && rerun_pid != victim,
                 "the killed worker's task was re-run on another worker");
  verdict.expect(per_worker_after.count(victim) == 0, "the killed worker answered nothing after its death");
  tally.retried += slow_ok && rerun_pid != victim;

  const ipckit::PoolStats st = pool.stats();
  demo::say("client: pool.stats(): workers %u, submitted %llu, succeeded %llu, failed %llu, running %zu, pending %zu\n",
            st.workers, static_cast<unsigned long long>(st.submitted), static_cast<unsigned long long>(st.succeeded),
            static_cast<unsigned long long>(st.failed), st.running, st.pending);
  for (const auto& w : st.per_worker)
    demo::say("client:   worker pid %d: %llu tasks done\n", static_cast<int>(w.pid),
              static_cast<unsigned long long>(w.tasks_done));
  verdict.expect(st.workers == kWorkers - 1, "pool.stats() counts the two surviving workers");

  tally.submitted = st.submitted;

  // Exactly once: every future completed once. A done callback runs in the
  // thread that completes the future, just after get() can return: wait for
  // the last ones, then look for any that ran twice.
  pool.shutdown();
  const auto all_done = [&] {
    return std::all_of(completions.begin(), completions.end(), [](const auto& c) { return c->load() >= 1; });
  };
  for (const auto until = demo::Clock::now() + 5s; !all_done() && demo::Clock::now() < until;)
    std::this_thread::sleep_for(1ms);
  const auto once = std::count_if(completions.begin(), completions.end(), [](const auto& c) { return c->load() == 1; });
  demo::say("client: %zu futures tracked with add_done_callback: %td completed exactly once\n", completions.size(),
            once);
  verdict.expect(once == static_cast<std::ptrdiff_t>(completions.size()), "every future completed exactly once");

  // e) close_pool: the workers finish what is queued and return.
  const bool closed = rd::close_pool(hub, n.pool);
  verdict.expect(closed, "close_pool found the pool");
  for (auto& w : workers) {
    if (!w.join(10s)) {
      demo::say("FAILED: %s did not exit within 10 s of close_pool\n", w.name().c_str());
      w.kill();
      w.join();
      verdict.expect(false, "every surviving worker ended after close_pool");
      continue;
    }
    const int code = w.exitcode().value_or(-1000);
    demo::say("client: %s (pid %d) exited with %d%s\n", w.name().c_str(), static_cast<int>(w.pid()), code,
              code == -SIGKILL ? " (SIGKILL)" : "");
    verdict.expect(code == (w.pid() == victim ? -SIGKILL : 0), "the workers' exit codes");
  }
  return tally;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"redis_workers — a JoinableQueue and a ProcessPool over Redis; a consumer and a worker are killed"};
  std::string url;
  int jobs = 300, tasks = 200, work_us = 1000;
  app.add_option("--url", url, "the Redis server (redis://host:port/db); default: start a throw-away redis-server");
  app.add_option("--jobs", jobs, "jobs the producer puts")->check(CLI::Range(10, 1000000));
  app.add_option("--tasks", tasks, "tasks the pool client submits in its first batch")->check(CLI::Range(1, 1000000));
  app.add_option("--work-us", work_us, "time a consumer spends on each job")->check(CLI::Range(0, 1000000));
  CLI11_PARSE(app, argc, argv);

  Checks verdict;
  std::optional<ipckit::testing::RedisServer> server;
  try {
    if (url.empty()) {
      server.emplace(ipckit::testing::RedisServer::start());
      url = server->url();
      demo::say("started a throw-away redis-server (pid %d) on %s, directory %s; stopped at the end\n",
                static_cast<int>(server->pid()), url.c_str(), server->dir().c_str());
    } else {
      demo::say("using the Redis server at %s\n", url.c_str());
    }
    rd::Hub hub(url);
    if (!hub.ping()) {
      demo::say("FAILED: %s does not answer PING\n", hub.url().c_str());
      return 1;
    }
    // Named after this process: several runs may share a server.
    const std::string tag = std::to_string(::getpid());
    const Names names{"jobs-" + tag, "results-" + tag, "events-" + tag, "demo-pool-" + tag};

    const auto q = queue_part(url, names, jobs, work_us, verdict);
    const auto p = q ? pool_part(url, names, tasks, verdict) : std::nullopt;
    for (const auto& name : {names.jobs, names.results, names.events}) (void)hub.remove(name);
    (void)rd::remove_pool(hub, names.pool);
    if (!q || !p) {
      demo::say("FAILED\n");
      return 1;
    }

    if (server) {
      server->stop();
      demo::say("\nstopped the throw-away redis-server\n");
    }
    if (verdict.ok())
      demo::say(
          "\nall %d jobs done exactly once, %d redelivered after its consumer was killed; pool: %llu tasks, each "
          "result once, %d re-run after its worker was killed, 1 TaskError\n",
          q->jobs, q->redelivered, static_cast<unsigned long long>(p->submitted), p->retried);
  } catch (const std::exception& e) {  // ipckit::Error, or the server that would not start
    demo::say("FAILED: %s\n", e.what());
    return 1;
  }
  return verdict.finish();
}
