// ipckit/redis/pool.hpp — a ProcessPool whose workers are programs on any
// machine, over Redis Streams.
//
//   // worker program, on every machine (as many as you like):
//   int square(int n) { return n * n; }
//   IPCKIT_TASK(square);
//   int main() { ipckit::redis::serve_pool(ipckit::redis::connect(url), "jobs"); }
//
//   // client:
//   ipckit::ProcessPool pool = ipckit::redis::connect(url).pool("jobs");
//   ipckit::Future<int> f = pool.submit(square, 7);   // the same ProcessPool API
//   f.get();                                          // 49
//
// The client is an ipckit::ProcessPool: submit / submit_for / try_submit,
// map, futures (get, wait, add_done_callback, wait_handle, as_completed),
// shutdown and stats work as with a named shared-memory pool
// (ProcessPool::connect, ipckit/pool.hpp); tasks travel by their registered
// names (IPCKIT_TASK, pool_tasks.hpp), arguments and results encoded as
// queue items are. An exception a task throws arrives as TaskError (or as
// itself if registered); a task whose worker died — killed, crashed, or
// silent for visibility_timeout — runs again on another worker up to
// `retries` times, then its future fails with WorkerDied; a task running
// past `task_timeout` fails with Timeout and its worker program ends
// (exit status 124: run workers under a supervisor that restarts them).
// Backpressure: at most max_pending tasks of a client are in flight (sent
// and not done); submit() blocks beyond, submit_for() throws Full.
//
// How: tasks go into one stream, ipckit:pool:{NAME}:tasks, read by the
// workers' consumer group; each worker takes `prefetch` tasks at a time and,
// in the same script call, posts the results of the ones it finished into
// each client's result stream and acknowledges them (one round trip per
// task or batch). A thread in the client sends what submit() queued, in
// batches (a submit to an idle client sends its task itself, sooner);
// another reads its result stream and completes the futures. A
// worker's heartbeat thread keeps the leases of the tasks it runs (so a
// long task is not taken over while its worker lives) and records the
// worker in ipckit:pool:{NAME}:workers (`ipckit ps --redis`).
//
// At least once: a task may run twice (its worker died after running it,
// before its result went out); its future completes once. Cancel() of a
// future cannot recall a task already sent (it returns false).
#pragma once

#include <chrono>
#include <csignal>
#include <cstddef>
#include <string>
#include <string_view>

#include "ipckit/pool.hpp"
#include "ipckit/pool_tasks.hpp"
#include "ipckit/redis/hub.hpp"

namespace ipckit::redis {

struct PoolOptions {
  // Every client and worker of a pool must agree on these two (TypeMismatch otherwise).
  std::size_t max_message = std::size_t{1} << 20;  // largest encoded arguments or result
  // A task whose worker shows no sign of life for this long goes to another.
  std::chrono::milliseconds visibility_timeout{30000};

  // A client's own.
  std::size_t max_pending = 1024;            // tasks sent and not done; submit() blocks beyond
  unsigned retries = 0;                      // runs again after its worker died, at most this many times
  std::chrono::nanoseconds task_timeout{0};  // zero: no limit

  // A worker's own (serve_pool).
  unsigned prefetch = 1;  // tasks taken at once: more is faster for short tasks; a dead worker's
                          // untouched prefetched tasks then count a delivery (and may fail WorkerDied
                          // with retries 0)
  const volatile std::sig_atomic_t* stop = nullptr;  // serve_pool returns once *stop != 0 (looked at every 100 ms)
};

// A client of the pool `name` on hub's server (the pool is made if new).
ProcessPool pool(const Hub& hub, std::string_view name, const PoolOptions& options = {});
// Serves the pool `name` from this program: runs the tasks its clients
// submit, by the names this program registered. Returns once the pool is
// closed (close_pool) and drained, or *options.stop is set.
void serve_pool(const Hub& hub, std::string_view name, const PoolOptions& options = {});
// Closes the pool: workers finish what is queued and return; clients' new
// tasks fail with Closed. False if there was no such pool. remove_pool also
// deletes its keys.
bool close_pool(const Hub& hub, std::string_view name);
bool remove_pool(const Hub& hub, std::string_view name);

}  // namespace ipckit::redis
