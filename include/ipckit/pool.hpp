// ipckit/pool.hpp — a pool of worker processes and futures: Python's
// concurrent.futures.ProcessPoolExecutor, on ipckit's own queues.
//
//   int square(int n) { return n * n; }
//   ipckit::ProcessPool pool({.workers = 4});
//   ipckit::Future<int> f = pool.submit(square, 5);
//   f.get();                              // 25 (waits); get(1s) throws Timeout if not done by then
//   pool.shutdown();                      // waits for every task (the destructor does the same)
//
// Tasks are function pointers or captureless lambdas: the workers are forked
// from the pool's process (Python's "fork" start method), so they run the
// same code. Arguments and results are encoded as queue items are (plain
// structs as bytes, anything else through cereal — this header brings
// cereal's std::string and std::vector support, include
// <cereal/types/...> for other containers; MessageTooLarge beyond
// PoolOptions::max_message).
//
// Beyond Python: a worker that dies in the middle of a task (SIGKILL, the OOM
// killer, a segfault in the task) fails that task's future alone, with
// WorkerDied naming its pid and signal; a new worker takes its place and
// every other task goes on. (Python's ProcessPoolExecutor breaks the whole
// pool; multiprocessing.Pool hangs.) An exception a task throws reaches get()
// as TaskError with its type name and message, or as itself if its type is
// registered (task_error.hpp).
//
// How (detail/pool_state.hpp): each task in flight has a slot in the
// pool's segment, whose state word a compare-and-swap moves from queued to
// running (the claim: a task runs once), to finishing, to free. Tasks reach
// the workers through a ByteQueue that idle workers watch without holding
// it (Queue::wait_readable); a worker claims the task's slot, runs it, sends
// the result back through a second ByteQueue and marks the slot. A thread
// waiting on the future polls, then sleeps on, that slot's word, and takes
// the result itself: no thread in between. A collector thread in the pool's
// process watches the workers (a dead one's slot fails with WorkerDied, or
// is queued again with retries; a task past its timeout gets its worker
// killed), replaces dead workers, and completes the futures nobody waits on.
//
// map() (results in input order, lazily, in chunks) is in
// detail/pool_map.hpp; wait(), as_completed() and AnyFuture in futures.hpp.
//
// Named pools, served by other programs: a worker program registers its
// tasks by name (IPCKIT_TASK, pool_tasks.hpp) and calls
// serve_pool("jobs"); a client calls ProcessPool::connect("jobs") and
// submits registered functions as to a fork pool. The records carry the
// task's name, never a code address. Workers may start before or after the
// clients, die (a client's collector fails or retries the task they ran)
// and serve client after client; close_pool("jobs") ends them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/error.hpp"
#include "ipckit/task_error.hpp"
#include "ipckit/wait_handle.hpp"
#include "ipckit/worker_local.hpp"

namespace ipckit {

// ProcessPool::map's options (Python's Executor.map arguments).
struct MapOptions {
  std::size_t chunksize = 1;  // inputs per task: one task runs fn over a chunk of them
  // For every result, counted from the map() call: an iteration step that
  // would pass it throws Timeout. max(): no limit.
  std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max();
  // At most this many chunks in flight, the next submitted as the iteration
  // takes a result (Python 3.14's buffersize; the inputs are then read
  // lazily, an endless range works). 0: map() submits every chunk.
  std::size_t buffersize = 0;
};

struct PoolOptions {
  unsigned workers = 0;             // 0: cpu_count() (at most 1023)
  std::size_t max_pending = 1024;   // tasks submitted and not yet taken by a worker: submit() blocks beyond
  std::size_t max_message = 65536;  // largest encoded arguments or result
  // Runs once in each worker (replacements too) before it takes a task;
  // fills worker_local state (worker_local.hpp). If it throws, the pool does
  // not start (ProcessError); a replacement whose initializer throws is not
  // replaced again. A function pointer or a captureless lambda.
  void (*initializer)() = nullptr;
  std::string name{};  // for messages; empty: "pool-<pid>-<n>"
  // A task running longer has its worker killed (and replaced); its future
  // fails with Timeout. Zero: no limit. Enforced within ~10 ms.
  std::chrono::nanoseconds task_timeout{0};
  // A task whose worker died (not one that threw or timed out) runs again,
  // at most this many times, before its future fails with WorkerDied.
  unsigned retries = 0;
};

// A pool served by separate programs (ProcessPool::connect, serve_pool).
struct NamedPoolOptions {
  // The pool's geometry: every process that serves or connects to the pool
  // must pass the same (TypeMismatch otherwise); the first one creates it.
  std::size_t max_pending = 1024;   // per client: tasks submitted and not yet done; submit() blocks beyond
  std::size_t max_message = 65536;  // largest encoded arguments or result
  unsigned max_clients = 8;         // clients connected at once
  unsigned max_workers = 64;        // worker programs serving at once (at most 1023)
  // A client's own (connect): as PoolOptions'. A task past the timeout has
  // its worker program killed (SIGKILL).
  std::chrono::nanoseconds task_timeout{0};
  unsigned retries = 0;
  // serve_pool: returns once *stop is non-zero (a flag a signal handler
  // sets), looked at every 100 ms. Null: only close_pool ends it.
  const volatile std::sig_atomic_t* stop = nullptr;
};

// A snapshot of a pool (ProcessPool::stats()).
struct PoolWorkerStats {
  unsigned index = 0;
  pid_t pid = 0;                            // 0 if not running
  std::uint64_t task = 0;                   // the task it runs (the number in messages), 0 if idle
  std::chrono::nanoseconds running_for{0};  // how long it has run that task
  std::uint64_t tasks_done = 0;             // tasks this worker process finished
};
struct PoolStats {
  unsigned workers = 0;  // configured
  unsigned workers_alive = 0;
  std::uint64_t restarts = 0;  // workers replaced after they died
  std::size_t pending = 0;     // queued, not yet taken by a worker
  std::size_t running = 0;
  std::uint64_t submitted = 0, succeeded = 0, failed = 0, timed_out = 0, cancelled = 0;
  std::vector<PoolWorkerStats> per_worker;
};

class ProcessPool;

namespace detail {

class PoolCore;

// What a future waits for, shared by the Future handles and the pool.
struct FutureState {
  std::mutex m;
  std::condition_variable cv;
  std::atomic<bool> done{false};  // set once, under m
  bool cancelled = false;         // under m
  std::string result;             // the encoded result (done and no error)
  std::exception_ptr error;       // TaskError, WorkerDied, Timeout, Cancelled, Closed
  std::uint64_t id = 0;
  std::shared_ptr<const std::string> pool_name;
  std::vector<std::function<void()>> listeners;  // under m; run once, after done
  // While pending (under m): the pool that completes it and its slot there.
  PoolCore* pool = nullptr;
  std::uint32_t slot = 0, gen = 0;
  std::string record;  // the task as queued, kept when the pool retries tasks

  // Waits until done or the deadline; whether done.
  bool wait_by(Deadline deadline);
  // Runs fn once done: at once (in this thread) if it is, else in the
  // thread that completes it. fn must not block.
  void add_listener(std::function<void()> fn);
  // "task 7 of pool 'x'", for errors.
  [[nodiscard]] std::string label() const;
};
bool cancel_future(FutureState& s);
bool future_running(FutureState& s);

// A task's arguments: each encoded as a queue item is (plain structs as
// bytes, the rest through cereal), after its length.
template <class T>
void append_encoded(std::string& out, const T& value) {
  const std::string_view bytes = encode(value);
  const std::uint64_t n = bytes.size();
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(bytes);
}
template <class... Args>
std::string_view encode_args(const Args&... args) {
  thread_local std::string out;
  out.clear();
  (append_encoded(out, args), ...);
  return out;
}
[[noreturn]] void throw_bad_arguments(std::size_t left);
template <class T>
void decode_next(T& value, const char*& p, std::size_t& n) {
  std::uint64_t len = 0;
  if (n < sizeof len) throw_bad_arguments(n);
  std::memcpy(&len, p, sizeof len);
  if (len > n - sizeof len) throw_bad_arguments(n);
  decode_into(value, p + sizeof len, static_cast<std::size_t>(len));
  p += sizeof len + len;
  n -= sizeof len + len;
}

// Runs the task `fn` (a function pointer of type Fn) on the arguments encoded
// in [p, p + n); writes the encoded result into `out`.
template <class Fn, class R, class... Args>
void invoke_task(std::uintptr_t fn, const char* p, std::size_t n, std::string& out) {
  std::tuple<Args...> args;
  std::apply([&](Args&... a) { (decode_next(a, p, n), ...); }, args);
  if (n != 0) throw_bad_arguments(n);
  const Fn f = reinterpret_cast<Fn>(fn);  // NOLINT(performance-no-int-to-ptr): the submitter's own address
  if constexpr (std::is_void_v<R>) {
    std::apply(f, std::move(args));
    out.clear();
  } else {
    const R r = std::apply(f, std::move(args));
    out.assign(encode(r));
  }
}
using InvokeFn = void (*)(std::uintptr_t, const char*, std::size_t, std::string&);

// What a ProcessPool runs on: its own forked workers or a named pool's
// (PoolCore, src/pool_core.hpp), or another transport (ipckit/redis/pool.hpp).
class PoolEngine {
 public:
  virtual ~PoolEngine() = default;
  // Null when no room came by the deadline (the pool then throws Full).
  virtual std::shared_ptr<FutureState> submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args,
                                              Deadline deadline) = 0;
  virtual void shutdown(bool wait, bool cancel_futures) = 0;
  [[nodiscard]] virtual unsigned workers() const noexcept = 0;
  [[nodiscard]] virtual std::vector<pid_t> worker_pids() const = 0;
  [[nodiscard]] virtual std::uint64_t restarts() const noexcept = 0;
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  [[nodiscard]] virtual PoolStats stats() const = 0;
};

[[noreturn]] void raise_invalid_future();
// Completes a future no PoolCore waits on (state.pool null): its result or
// error, then its waiters and listeners. Once; later calls do nothing.
void finish_future(FutureState& state, std::string result, std::exception_ptr error);
struct PoolAccess {  // makes a ProcessPool of another engine
  static ProcessPool make(std::unique_ptr<PoolEngine> engine);
};
// A descriptor readable once the future is done (src/wait_handle.cpp).
WaitHandle future_wait_handle(const std::shared_ptr<FutureState>& state);
struct FutureAccess;  // futures.hpp: the state of a Future of any R

}  // namespace detail

template <class R>
class Future {
 public:
  Future() = default;
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

  // Waits; the task's value, or throws what it failed with (TaskError,
  // WorkerDied, Timeout for a task past the pool's task_timeout, Cancelled).
  R get() { return get_by(detail::Deadline::never()); }
  // Throws Timeout if the task is not done in time.
  IPCKIT_DETAIL_TIMED_FORMS(R, get, get_until, get_by);
  void wait() { (void)wait_by(detail::Deadline::never()); }
  // Whether the task is done within the time.
  IPCKIT_DETAIL_TIMED_FORMS(bool, wait, wait_until, wait_by);
  // Done (a value or an error), never waits.
  [[nodiscard]] bool ready() const { return state().wait_by(detail::Deadline::now()); }
  [[nodiscard]] bool done() const { return ready(); }
  // Waits; what the task failed with, or null if it has a value.
  std::exception_ptr exception() {
    wait();
    return state().error;
  }
  // Python's cancel(): a task no worker has taken yet is cancelled (get()
  // throws Cancelled) and true is returned; false once it runs or is done
  // (true again if it was cancelled).
  bool cancel() { return detail::cancel_future(state()); }
  [[nodiscard]] bool cancelled() const {
    detail::FutureState& s = state();
    std::lock_guard lock(s.m);
    return s.cancelled;
  }
  // Whether a worker runs it now.
  [[nodiscard]] bool running() const { return detail::future_running(state()); }
  // A descriptor readable once the task is done, for event loops
  // (ipckit/wait_handle.hpp); it stays readable from then on.
  [[nodiscard]] WaitHandle wait_handle() const {
    if (s_ == nullptr) detail::raise_invalid_future();
    return detail::future_wait_handle(s_);
  }
  // async_get([timeout,] [CancelSignal,] token) -> R: ipckit/asio.hpp.
  template <class... A>
  auto async_get(A&&... a) {
    return detail::AsyncOpsFor<Future, A...>::get(*this, std::forward<A>(a)...);
  }

  // Python's add_done_callback: fn(future) — fn takes Future<R>& or const
  // Future<R>& — runs once the task is done: at once, in this thread, if it
  // is done already; else in the thread that completes it (the pool's
  // collector thread, or a thread that took the result while waiting), after
  // get() is woken, in the order the callbacks were added. An exception fn
  // throws is ignored (Python logs it). fn must be short: it must not wait
  // for another future of the pool, nor submit to a pool that may be full.
  template <class Fn>
  void add_done_callback(Fn fn) {
    static_assert(std::is_invocable_v<Fn&, Future&>, "add_done_callback takes fn(Future<R>&)");
    detail::FutureState& s = state();
    // A weak handle: the state holds its listeners, which must not keep it
    // alive. It is alive while they run (its completer holds it).
    s.add_listener([w = std::weak_ptr<detail::FutureState>(s_), fn = std::make_shared<Fn>(std::move(fn))] {
      Future self(w.lock());
      try {
        (*fn)(self);
      } catch (...) {  // NOLINT(bugprone-empty-catch): Python's add_done_callback ignores it too
      }
    });
  }

  R get_by(detail::Deadline deadline) {
    detail::FutureState& s = state();
    if (!s.wait_by(deadline)) {
      const std::string label = s.label();
      throw Timeout(label, "ipckit: " + label + " is not done yet; wait longer, or check ready() first");
    }
    if (s.error) std::rethrow_exception(s.error);
    if constexpr (!std::is_void_v<R>) {
      R r{};
      detail::decode_into(r, s.result.data(), s.result.size());
      return r;
    }
  }
  bool wait_by(detail::Deadline deadline) { return state().wait_by(deadline); }

 private:
  friend class ProcessPool;
  friend struct detail::FutureAccess;
  explicit Future(std::shared_ptr<detail::FutureState> s) : s_(std::move(s)) {}
  detail::FutureState& state() const {
    if (s_ == nullptr) detail::raise_invalid_future();
    return *s_;
  }
  std::shared_ptr<detail::FutureState> s_;
};

class ProcessPool {
 public:
  // Starts the workers: forked, as daemons (they end with this process).
  explicit ProcessPool(const PoolOptions& options = {});
  ~ProcessPool();
  // A client of the named pool `name`, served by worker programs that call
  // serve_pool(name) (before or after): creates the pool if it does not
  // exist, starts no worker. Submit functions registered with IPCKIT_TASK
  // (pool_tasks.hpp); InvalidArgument for others. shutdown() waits for this
  // client's tasks (while no worker serves, until one does) and leaves the
  // workers running. Throws TypeMismatch if the pool exists with another
  // geometry, Full if max_clients clients are connected.
  static ProcessPool connect(const std::string& name, const NamedPoolOptions& options = {});
  ProcessPool(ProcessPool&&) noexcept;
  ProcessPool& operator=(ProcessPool&&) noexcept;
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Queues fn(args...) for a worker. Blocks while max_pending tasks wait.
  // Throws Closed after shutdown(), MessageTooLarge.
  template <class F, class... Args>
  auto submit(F fn, Args&&... args) {
    return submit_by(detail::Deadline::never(), +fn, std::forward<Args>(args)...);
  }
  // Throws Full if max_pending tasks still wait after `timeout` / at `t`.
  template <class Rep, class Period, class F, class... Args>
  auto submit_for(const std::chrono::duration<Rep, Period>& timeout, F fn, Args&&... args) {
    return submit_by(detail::Deadline::after(timeout), +fn, std::forward<Args>(args)...);
  }
  template <class Clock, class Duration, class F, class... Args>
  auto submit_until(const std::chrono::time_point<Clock, Duration>& t, F fn, Args&&... args) {
    return submit_by(detail::Deadline::at(t), +fn, std::forward<Args>(args)...);
  }
  // Nullopt where submit_for(0s, ...) throws Full.
  template <class F, class... Args>
  auto try_submit(F fn, Args&&... args) {
    using Fut = decltype(submit(fn, std::forward<Args>(args)...));
    std::shared_ptr<detail::FutureState> s =
        encode_and_submit(detail::Deadline::now(), +fn, std::forward<Args>(args)...);
    return s ? std::optional<Fut>(Fut(std::move(s))) : std::nullopt;
  }

  // Python's Executor.map: fn over every input of `inputs` (any input range:
  // a vector, std::views::iota...), the results in input order as a lazy
  // input range (range-for) of MapResults<R>. Every chunk is submitted by
  // map() (which blocks at max_pending as submit does), or with .buffersize
  // as the iteration goes. A task's failure (TaskError, WorkerDied...) is
  // thrown by the iteration step that reaches its chunk; Timeout by the step
  // that would pass .timeout. Throws InvalidArgument (chunksize 0), Closed,
  // MessageTooLarge (a chunk larger than max_message). Defined in
  // detail/pool_map.hpp. With .buffersize, iterate while the pool exists.
  template <class F, class Inputs>
  auto map(F fn, Inputs&& inputs, MapOptions options = {});

  // Python's shutdown(wait, cancel_futures): no more submits (Closed). With
  // cancel_futures, tasks no worker has taken yet fail with Closed. With
  // wait, returns once every task is done and the workers have ended; else
  // at once (the destructor then waits).
  void shutdown(bool wait = true, bool cancel_futures = false);

  [[nodiscard]] unsigned workers() const noexcept;
  // The workers alive now.
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  // Workers replaced after they died.
  [[nodiscard]] std::uint64_t restarts() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  // Workers, tasks and counters as they are now.
  [[nodiscard]] PoolStats stats() const;

 private:
  template <class Fn>
  static constexpr void check_task() {
    static_assert(std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>,
                  "submit() takes a function pointer or a captureless lambda (the workers run the same code)");
  }
  template <class R, class... P, class... Args>
  Future<R> submit_by(detail::Deadline deadline, R (*fn)(P...), Args&&... args) {
    std::shared_ptr<detail::FutureState> s = encode_and_submit(deadline, fn, std::forward<Args>(args)...);
    if (s == nullptr) raise_full();
    return Future<R>(std::move(s));
  }
  // The arguments travel as the task's parameter types (a "text" for a
  // std::string parameter goes as a std::string). Null when no room came by the deadline.
  template <class R, class... P, class... Args>
  std::shared_ptr<detail::FutureState> encode_and_submit(detail::Deadline deadline, R (*fn)(P...), Args&&... args) {
    check_task<R (*)(P...)>();
    static_assert(sizeof...(P) == sizeof...(Args), "submit(): pass as many arguments as the task takes");
    const std::string_view bytes =
        detail::encode_args<std::decay_t<P>...>(std::decay_t<P>(std::forward<Args>(args))...);
    const detail::InvokeFn invoke = &detail::invoke_task<R (*)(P...), R, std::decay_t<P>...>;
    return submit_bytes(reinterpret_cast<std::uintptr_t>(fn), invoke, bytes, deadline);
  }
  std::shared_ptr<detail::FutureState> submit_bytes(std::uintptr_t fn, detail::InvokeFn invoke, std::string_view args,
                                                    detail::Deadline deadline = detail::Deadline::never());
  [[noreturn]] void raise_full() const;
  friend struct detail::PoolAccess;
  explicit ProcessPool(std::unique_ptr<detail::PoolEngine> core);
  std::unique_ptr<detail::PoolEngine> core_;
};

// Serves the named pool `name` from this process (a worker program): joins
// it (creating it if it does not exist; TypeMismatch for another geometry,
// Full if max_workers workers serve already) and runs the tasks its clients
// submit, by the names this program registered (IPCKIT_TASK; an unknown
// name fails that task with NotFound). Returns once the pool is closed
// (close_pool) and drained, or once *options.stop is set.
void serve_pool(const std::string& name, const NamedPoolOptions& options = {});
// Closes the named pool: its workers finish what is queued and return from
// serve_pool; clients get Closed on submit. Removes the name (a later
// connect or serve_pool makes a new pool). False if there was no such pool.
bool close_pool(const std::string& name);

}  // namespace ipckit

#include "ipckit/detail/pool_map.hpp"  // ProcessPool::map
