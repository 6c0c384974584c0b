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
// as TaskError with its type name and message.
//
// How: tasks go to the workers through a ByteQueue in a segment of the
// pool's own. A worker takes a task through a view (loan.hpp) and, before it
// lets the queue go, writes the task's id into its slot of the pool's table:
// a worker killed before that leaves the task queued for the next one, one
// killed after it is found with the task by the pool's collector thread,
// which watches the workers, fails that task's future, and starts a new
// worker. Results come back through a second ByteQueue to that collector
// thread, which completes the futures.
//
// map() (results in input order, lazily, in chunks) is in
// detail/pool_map.hpp; wait(), as_completed() and AnyFuture in futures.hpp.
//
// This is the pool's first slice. Not yet: cancel, task timeouts, retries,
// initializer and worker-local state, named pools served by other programs,
// stats.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/error.hpp"

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
  unsigned workers = 0;             // 0: cpu_count()
  std::size_t max_pending = 1024;   // tasks submitted and not yet taken by a worker: submit() blocks beyond
  std::size_t max_message = 65536;  // largest encoded arguments or result
  std::string name{};               // for messages; empty: "pool-<pid>-<n>"
};

// An exception a task threw, as Future::get() reports it.
class TaskError : public Error {
 public:
  TaskError(std::string object, const std::string& message, std::string type_name, std::string original)
      : Error(std::move(object), message), type_name_(std::move(type_name)), message_(std::move(original)) {}
  // The original exception's type, demangled ("std::runtime_error").
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  // Its what().
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

namespace detail {

// What a future waits for, shared by the Future handles and the pool.
struct FutureState {
  std::mutex m;
  std::condition_variable cv;
  std::atomic<bool> done{false};  // set once, under m
  std::string result;             // the encoded result (done and no error)
  std::exception_ptr error;       // TaskError, WorkerDied, Closed
  std::string label;              // "task 7 of pool 'x'", for errors
  // Guarded by m: what add_listener() keeps for the completion, which runs them once.
  std::vector<std::function<void()>> listeners;

  // Waits until done or the deadline; whether done.
  bool wait_by(Deadline deadline);
  // Runs fn once done: at once, in the caller, if done already; else in the
  // thread that completes the future (the pool's collector thread), after
  // the waiters are woken, outside m, in the order they were added. What
  // add_done_callback, wait() and as_completed() build on: fn must be cheap
  // and must not block (it holds up every other future of the pool).
  void add_listener(std::function<void()> fn) {
    {
      std::lock_guard lock(m);
      if (!done.load(std::memory_order_relaxed)) {
        listeners.push_back(std::move(fn));
        return;
      }
    }
    fn();
  }
};

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

[[noreturn]] void raise_invalid_future();

class PoolCore;
struct FutureAccess;  // futures.hpp: the state of a Future of any R

}  // namespace detail

template <class R>
class Future {
 public:
  Future() = default;
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

  // Waits; the task's value, or throws what it failed with (TaskError,
  // WorkerDied, Closed).
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

  R get_by(detail::Deadline deadline) {
    detail::FutureState& s = state();
    if (!s.wait_by(deadline))
      throw Timeout(s.label, "ipckit: " + s.label + " is not done yet; wait longer, or check ready() first");
    if (s.error) std::rethrow_exception(s.error);
    if constexpr (!std::is_void_v<R>) {
      R r{};
      detail::decode_into(r, s.result.data(), s.result.size());
      return r;
    }
  }
  bool wait_by(detail::Deadline deadline) { return state().wait_by(deadline); }

  // Python's add_done_callback: fn(future) — fn takes Future<R>& or const
  // Future<R>& — runs once the task is done: at once, in this thread, if it
  // is done already; else in the thread that completes it (the pool's
  // collector thread), after get() is woken, in the order the callbacks were
  // added. An exception fn throws is ignored (Python logs it). fn holds up
  // the pool's other results while it runs: it must not wait for another
  // future of the pool, nor submit to a pool that may be full.
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
  explicit ProcessPool(PoolOptions options = {});
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Queues fn(args...) for a worker. Blocks while max_pending tasks wait.
  // Throws Closed after shutdown(), MessageTooLarge.
  template <class F, class... Args>
  auto submit(F fn, Args&&... args) {
    using Fn = decltype(+fn);  // a captureless lambda as its function pointer
    static_assert(std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>,
                  "submit() takes a function pointer or a captureless lambda (the workers run the same code)");
    return submit_to(+fn, std::forward<Args>(args)...);
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

 private:
  // The arguments travel as the task's parameter types (a "text" for a
  // std::string parameter goes as a std::string).
  template <class R, class... P, class... Args>
  Future<R> submit_to(R (*fn)(P...), Args&&... args) {
    static_assert(sizeof...(P) == sizeof...(Args), "submit(): pass as many arguments as the task takes");
    const std::string_view bytes =
        detail::encode_args<std::decay_t<P>...>(std::decay_t<P>(std::forward<Args>(args))...);
    const detail::InvokeFn invoke = &detail::invoke_task<R (*)(P...), R, std::decay_t<P>...>;
    return Future<R>(submit_bytes(reinterpret_cast<std::uintptr_t>(fn), invoke, bytes));
  }
  std::shared_ptr<detail::FutureState> submit_bytes(std::uintptr_t fn, detail::InvokeFn invoke, std::string_view args);
  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace ipckit

#include "ipckit/detail/pool_map.hpp"  // ProcessPool::map
