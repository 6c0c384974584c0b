// async_gateway — the seed's asyncio example across processes, with Boost.Asio:
//
//   async def main():
//       print("Hello")
//       await asyncio.sleep(1)
//       print("World")
//   asyncio.run(main())
//
// One process, one thread running one io_context (asyncio's event loop), and
// coroutines (async def / await) that wait at the same time for:
//   - N ipckit queues (default 4), each fed by its own producer process
//     (ipckit::Process), at its own pace: co_await q.async_get(use_awaitable);
//   - a steady_timer: the seed's asyncio.sleep;
//   - a ProcessPool future (a task computed in a worker process):
//     co_await future.async_get(use_awaitable), asyncio's Future.
// Each prints as it completes, in the order things happen. The loop thread
// never blocks inside ipckit: a queue, a timer or a future is just one more
// thing the io_context waits for (ipckit's wait handles, file descriptors).
//
// The claim it checks (it runs as a test): every item of every queue arrived
// exactly once and in order, the timer fired no earlier than asked, the pool
// task's result is right, and it was all done before a deadline.
// Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <ipckit/asio.hpp>
#include <ipckit/ipckit.hpp>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

namespace {

// What a producer puts: which feed, its place in the feed, and a value the
// consumer can check (seq squared).
struct Item {
  std::int32_t feed = 0;
  std::int32_t seq = 0;
  std::int64_t value = 0;
};

struct FeedTally {
  int got = 0;
  int wrong = 0;  // out of order, from another feed, or a bad value
};

demo::Clock::time_point t0;

// "[ 123 ms] " before every line: when, since the loop started.
long long at() { return demo::ms_since(t0); }

// The pool's task, run in a worker process: primes below n (trial division,
// a few ms of real work).
int count_primes(int n) {
  int count = 0;
  for (int k = 2; k < n; ++k) {
    bool prime = true;
    for (int d = 2; d * d <= k && prime; ++d) prime = k % d != 0;
    count += prime ? 1 : 0;
  }
  return count;
}

// One coroutine per queue: await each item, check it, print the first few.
awaitable<void> drain_feed(ipckit::Queue<Item>& q, int feed, int items, int show, FeedTally& tally) {
  for (int seq = 0; seq < items; ++seq) {
    const Item it = co_await q.async_get(use_awaitable);  // the loop serves the others meanwhile
    ++tally.got;
    if (it.feed != feed || it.seq != seq || it.value != std::int64_t{seq} * seq) ++tally.wrong;
    if (seq < show) demo::say("[%4lld ms] feed-%d: item %d (value %lld)\n", at(), feed, it.seq, (long long)it.value);
  }
  demo::say("[%4lld ms] feed-%d: all %d items in\n", at(), feed, tally.got);
}

// The seed's main(): Hello, await asyncio.sleep(...), World.
awaitable<void> hello_world(std::chrono::milliseconds sleep, bool& fired) {
  demo::say("[%4lld ms] timer: Hello (awaiting a %lld ms steady_timer)\n", at(), (long long)sleep.count());
  const auto start = demo::Clock::now();
  asio::steady_timer timer(co_await asio::this_coro::executor, sleep);
  co_await timer.async_wait(use_awaitable);
  fired = demo::Clock::now() - start >= sleep;
  demo::say("[%4lld ms] timer: World\n", at());
}

// A pool future awaited like any other operation.
awaitable<void> pool_result(ipckit::Future<int>& future, int n, int& result) {
  result = co_await future.async_get(use_awaitable);
  demo::say("[%4lld ms] pool: count_primes(%d) -> %d, computed in a worker process\n", at(), n, result);
}

// What main() waits for: the coroutines still running, and the deadline to
// cancel once none is (then io.run() returns: nothing is left to wait for).
struct Pending {
  int count = 0;
  asio::steady_timer* deadline = nullptr;
  demo::Verdict* verdict = nullptr;
};

// co_spawn's completion handler: counts the coroutine done; an exception
// escaping it fails the demo.
auto on_done(Pending& pending, std::string what) {
  ++pending.count;
  return [&pending, what](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        demo::say("FAILED: %s: %s\n", what.c_str(), x.what());
        pending.verdict->expect(false, "no coroutine throws");
      }
    }
    if (--pending.count == 0) pending.deadline->cancel();
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"async_gateway — one io_context thread awaiting ipckit queues, a timer and a pool future"};
  int feeds = 4, items = 50, show = 2, sleep_ms = 300, primes_below = 200000, timeout_s = 30;
  app.add_option("--queues", feeds, "queues, each fed by its own producer process")->check(CLI::Range(1, 64));
  app.add_option("--items", items, "items per queue")->check(CLI::Range(1, 1'000'000));
  app.add_option("--show", show, "items printed per queue (the rest are counted)")->check(CLI::Range(0, 1'000'000));
  app.add_option("--sleep-ms", sleep_ms, "the timer (the seed's asyncio.sleep)")->check(CLI::Range(0, 60'000));
  app.add_option("--primes-below", primes_below, "the pool task: count the primes below this")
      ->check(CLI::Range(2, 100'000'000));
  app.add_option("--timeout-s", timeout_s, "give up (and fail) if not all done by then")->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  demo::Verdict verdict;

  const std::string name = "demo-async-gateway-" + std::to_string(::getpid());
  auto seg = ipckit::Segment::create(name, std::size_t{4} << 20);
  ipckit::SegmentRemover remove(name);
  auto go = seg.event("go");  // producers start once the loop runs

  // The producers: feed k puts its items every k+1 ms (the feeds interleave).
  std::vector<ipckit::Queue<Item>> queues;
  std::vector<ipckit::Process> producers;
  for (int k = 0; k < feeds; ++k) {
    queues.push_back(seg.queue<Item>("feed-" + std::to_string(k), {.capacity_bytes = 64 << 10}));
    producers.emplace_back(
        [&go, &queues, k, items] {  // runs in the child, on its copy of `queues`
          go.wait();
          for (int seq = 0; seq < items; ++seq) {
            std::this_thread::sleep_for(std::chrono::milliseconds(k + 1));
            queues[static_cast<std::size_t>(k)].put(Item{k, seq, std::int64_t{seq} * seq});
          }
        },
        ipckit::ProcessOptions{.name = "producer-" + std::to_string(k), .daemon = true});
    producers.back().start();
  }
  ipckit::ProcessPool pool({.workers = 1});
  demo::say("%d producer processes, a pool of 1 worker; one thread, one io_context awaits it all:\n", feeds);

  // asyncio.run(main()): schedule the coroutines, then run the loop until all are done.
  asio::io_context io(1);
  asio::steady_timer deadline(io, std::chrono::seconds(timeout_s));  // a lost wake-up fails, never hangs
  bool timed_out = false;
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) timed_out = true, io.stop();
  });
  Pending pending{.deadline = &deadline, .verdict = &verdict};
  std::vector<FeedTally> tallies(static_cast<std::size_t>(feeds));
  bool fired = false;
  int primes = -1;
  t0 = demo::Clock::now();
  for (std::size_t k = 0; k < queues.size(); ++k)
    asio::co_spawn(io, drain_feed(queues[k], static_cast<int>(k), items, show, tallies[k]),
                   on_done(pending, "feed-" + std::to_string(k)));
  asio::co_spawn(io, hello_world(std::chrono::milliseconds(sleep_ms), fired), on_done(pending, "timer"));
  ipckit::Future<int> future = pool.submit(count_primes, primes_below);
  asio::co_spawn(io, pool_result(future, primes_below, primes), on_done(pending, "pool"));
  go.set();
  io.run();

  int total = 0, wrong = 0;
  for (const auto& t : tallies) total += t.got, wrong += t.wrong;
  demo::say("main: %d of %d items from %d queues, timer %s, pool %s, in %lld ms on one thread\n", total, feeds * items,
            feeds, fired ? "fired" : "NOT FIRED", primes >= 0 ? "done" : "NOT DONE", at());
  verdict.expect(!timed_out, "all done before the deadline");
  verdict.expect(total == feeds * items, "every item of every queue arrived");
  verdict.expect(wrong == 0, "every item intact and in its feed's order");
  verdict.expect(fired, "the timer fired, no earlier than asked");
  verdict.expect(primes == count_primes(primes_below), "the pool task's result is right");
  for (auto& p : producers) {
    if (timed_out) p.kill();
    p.join();
  }
  return verdict.finish();
}
