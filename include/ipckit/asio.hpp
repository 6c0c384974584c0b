// ipckit/asio.hpp — ipckit's queues, events, semaphores, locks and pool
// futures awaited from a Boost.Asio io_context, without a thread per object.
//
//   boost::asio::awaitable<void> consume(ipckit::Queue<Job> jobs) {
//     for (;;) {
//       Job j = co_await jobs.async_get(boost::asio::use_awaitable);   // Closed once closed and drained
//       ...
//     }
//   }
//
// The operations (members of the objects; only this header defines them):
//
//   q.async_get(token)                  -> T      Closed (closed and drained), DecodeError
//   q.async_get(timeout, token)         -> T      also Empty after the timeout, like get(timeout)
//   q.async_put(item, token)            -> void   Closed, MessageTooLarge
//   q.async_put(item, timeout, token)   -> void   also Full after the timeout
//     on Queue<T>, JoinableQueue<T>, ByteQueue (async_put copies the bytes),
//     PriorityQueue<T> (async_put(priority, item, ...); async_get gives T)
//   event.async_wait([timeout,] token)         -> bool   as Event::wait(timeout)
//   semaphore.async_acquire([timeout,] token)  -> bool   false after the timeout
//   lock.async_acquire([timeout,] token)       -> bool   Lock and RLock; false after the timeout
//   future.async_get([timeout,] token)         -> R      the task's value or exception; Timeout
//   any_future.async_wait([timeout,] token)    -> bool   AnyFuture: done (false after the timeout)
//
// Arguments, in order: an optional executor or io_context (first), the
// operation's own values, an optional timeout (any std::chrono::duration;
// zero or negative: one try), an optional ipckit::CancelSignal, the
// completion token. Completion signatures are void(std::exception_ptr, R)
// and void(std::exception_ptr) for no value, so use_awaitable rethrows
// ipckit's typed errors, use_future delivers them through the future, and a
// callback receives the exception_ptr (null on success).
//
// Executors: the handler completes on its associated executor (use_awaitable:
// the coroutine's), never inside the initiating call. A plain callback has
// none, nor has use_future: pass the io_context or an executor first,
// q.async_get(io, [](std::exception_ptr e, T v) { ... }). The executor's
// context's descriptors and timers serve the operation (an io_context's, or
// any context whose executors asio descriptors accept).
//
// Cancellation: Boost 1.74's Asio has no per-operation cancellation slots.
// Pass an ipckit::CancelSignal; emit() completes every operation started with
// it and still pending with ipckit::Cancelled (an operation that completes
// meanwhile keeps its result: nothing taken is lost); an operation started
// with an emitted signal completes with Cancelled at once. With an Asio that
// has cancellation slots (Boost >= 1.77) the handler's associated slot is
// honoured as well, any cancellation type meaning the same (compiled only
// there: untested here).
//
// Locks: a Lock belongs to a thread. The attempt that takes it runs in the
// handler's executor and the handler is invoked right after, in the same
// thread: the lock is held by the thread that runs the completion. Unlock it
// from that thread: with an io_context run by several threads, before the
// coroutine's next co_await (which may resume elsewhere), or use a
// single-threaded io_context. The same holds for an RLock's depth.
//
// How: each operation tries its nonblocking form (try_get, try_put,
// is_set, try_acquire, try_lock, ready) in the handler's executor; when it
// fails, it registers with this io_context's service, which watches the
// object's wait handle (ipckit/wait_handle.hpp): one asio descriptor per
// descriptor (handles of one object share one), whatever the number of
// operations pending on it, armed before the retry so that no change is
// missed. A readable descriptor re-tries every operation pending on it
// (readable means "maybe": another process may win the item, and the
// operation keeps waiting). Every operation pending also re-tries every 25 ms
// (one timer per io_context), since rare wakes may be missed (a waker killed
// mid-change, a lock holder that died, a side lock released by a blocking
// user); that costs about 5% of a core for 1000 operations pending (each
// re-check arms and tries each of them). No thread is started; an operation
// with a timeout has one timer.
// An io_context run by several threads is safe: the service's state is under
// one mutex, and each operation has at most one attempt in flight.
//
// A descriptor whose operations are all done stays registered (and its wait
// handle open) for the next operation on the object, up to 1024 of them per
// io_context; it no longer counts as work, so run() returns when nothing is
// pending. Handles of one object in one process share one descriptor: two
// io_contexts (or an io_context and your own epoll loop) awaiting the same
// object in one process each empty it when they arm, so one may see a change
// only at its next 25 ms re-check. Await each object from one io_context.
//
// An item is only taken (and a lock, unit or event observed) in the attempt
// that completes the handler: a handler destroyed without being invoked
// (its io_context destroyed) took nothing. A forked child must make its
// own io_context: operations and their descriptors belong to the process.
#pragma once

// Boost 1.74's asio.hpp uses std::exchange without including <utility> under -std=c++20.
#include <utility>
// clang-format off
#include <boost/asio.hpp>
// clang-format on

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/lock_state.hpp"  // kLivenessInterval
#include "ipckit/error.hpp"
#include "ipckit/wait_handle.hpp"

#if BOOST_ASIO_VERSION >= 101900 && __has_include(<boost/asio/bind_cancellation_slot.hpp>)
#define IPCKIT_ASIO_CANCELLATION_SLOTS 1
#else
#define IPCKIT_ASIO_CANCELLATION_SLOTS 0
#endif

namespace ipckit {

namespace detail {
class AsyncOpBase;
struct CancelState {
  std::mutex m;
  bool emitted = false;
  std::vector<std::weak_ptr<AsyncOpBase>> ops;
};
}  // namespace detail

// Cancels asynchronous operations: pass it (copies share one signal) to any
// number of async_ calls; emit() completes those still pending with
// ipckit::Cancelled, and those started after it at once. Thread-safe.
class CancelSignal {
 public:
  CancelSignal() : s_(std::make_shared<detail::CancelState>()) {}
  void emit();
  void cancel() { emit(); }
  [[nodiscard]] bool emitted() const {
    std::lock_guard g(s_->m);
    return s_->emitted;
  }

 private:
  template <class>
  friend struct detail::AsyncOps;
  std::shared_ptr<detail::CancelState> s_;
};

namespace detail {

namespace asio = boost::asio;

class AsyncService;

// An operation as the service sees it. Its fields are the service's, under
// its mutex.
class AsyncOpBase : public std::enable_shared_from_this<AsyncOpBase> {
 public:
  enum Request : unsigned { kRetry = 1, kTimeout = 2, kCancel = 4, kFail = 8 };
  enum class State { Attempting, Pending, Done };
  explicit AsyncOpBase(AsyncService& svc) : svc_(svc) {}
  AsyncOpBase(const AsyncOpBase&) = delete;
  AsyncOpBase& operator=(const AsyncOpBase&) = delete;
  virtual ~AsyncOpBase() = default;
  // Cancels it (CancelSignal, cancellation slot): completes with Cancelled
  // unless it completes otherwise first.
  void cancel();

 protected:
  friend class AsyncService;
  // Posts run() to the handler's executor.
  virtual void post_run() = 0;
  // The object's wait handle (may throw).
  virtual WaitHandle make_handle() = 0;

  AsyncService& svc_;
  State state_ = State::Attempting;  // start() posts the first attempt
  unsigned requests_ = kRetry;
  bool registered_ = false;
  std::exception_ptr error_;  // why registering failed (kFail)
  std::shared_ptr<struct AsyncWatch> watch_;
  std::optional<asio::steady_timer> timer_;
};

// One watched descriptor: one registration with the io_context's reactor,
// every operation pending on it.
struct AsyncWatch {
  AsyncWatch(const asio::any_io_executor& ex, WaitHandle h) : handle(std::move(h)), sd(ex) {}
  AsyncWatch(const AsyncWatch&) = delete;
  AsyncWatch& operator=(const AsyncWatch&) = delete;
  // The descriptor is the wait handle's: never closed here.
  ~AsyncWatch() { (void)sd.release(); }
  WaitHandle handle;  // keeps the descriptor open (and its number ours)
  asio::posix::stream_descriptor sd;
  bool waiting = false;     // an async_wait is queued
  unsigned generation = 0;  // of the latest async_wait: older completions are stale
  std::vector<std::shared_ptr<AsyncOpBase>> ops;
};

// Per io_context: the watched descriptors, the 25 ms re-check.
class AsyncService : public asio::execution_context::service {
 public:
  using key_type = AsyncService;
  inline static asio::execution_context::id id;
  explicit AsyncService(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  // The executor of the service's descriptors and timers: the first
  // operation's (all share one context).
  void adopt(const asio::any_io_executor& ex) {
    std::lock_guard g(m_);
    if (!ex_) {
      ex_ = ex;
      tick_.emplace(ex_);
    }
  }

  // Called by the operation, in its executor: takes what was asked of it.
  unsigned take_requests(AsyncOpBase& op) {
    std::lock_guard g(m_);
    const unsigned r = op.requests_;
    op.requests_ = 0;
    return r;
  }
  // After a failed attempt: registers the operation on its first failure
  // (then it must try again, after the arm), else parks it as Pending.
  // False when it must attempt again now.
  bool settle(AsyncOpBase& op) {
    std::lock_guard g(m_);
    if (!op.registered_ && !shut_) register_op(op);
    if (op.requests_ != 0) return false;
    op.state_ = AsyncOpBase::State::Pending;
    return true;
  }
  // Asks for an attempt (or the last one, or the cancellation).
  void request(AsyncOpBase& op, unsigned what) {
    std::lock_guard g(m_);
    request_locked(op, what);
  }
  // Ends the operation: false if it had ended already.
  bool finish(AsyncOpBase& op) {
    std::lock_guard g(m_);
    if (op.state_ == AsyncOpBase::State::Done) return false;
    op.state_ = AsyncOpBase::State::Done;
    if (op.timer_) op.timer_->cancel();
    if (op.watch_) {
      auto w = std::move(op.watch_);
      auto& ops = w->ops;
      const auto it = std::find_if(ops.begin(), ops.end(), [&](const auto& p) { return p.get() == &op; });
      if (it != ops.end()) {
        *it = std::move(ops.back());
        ops.pop_back();
      }
      if (ops.empty()) park(w);
      --pending_;
    }
    return true;
  }
  // Starts the operation (its first attempt) and its timeout.
  template <class Deadline>
  void start(const std::shared_ptr<AsyncOpBase>& op, const std::optional<Deadline>& deadline) {
    std::lock_guard g(m_);
    if (deadline) {
      op->timer_.emplace(ex_);
      op->timer_->expires_at(*deadline);
      op->timer_->async_wait([this, op](const boost::system::error_code& ec) {
        if (!ec) request(*op, AsyncOpBase::kTimeout);
      });
    }
    op->post_run();
  }

 private:
  void shutdown() override {
    std::lock_guard g(m_);
    shut_ = true;
    for (auto& [fd, w] : watches_) {
      (void)w->sd.release();
      w->ops.clear();
    }
    watches_.clear();
    // Destroyed here, not in ~AsyncService: the io_context destroys its
    // services after shutting all of them down, and the timer service,
    // created after this one, is destroyed before it.
    tick_.reset();
  }

  void request_locked(AsyncOpBase& op, unsigned what) {
    if (op.state_ == AsyncOpBase::State::Done) return;
    op.requests_ |= what;
    if (op.state_ == AsyncOpBase::State::Pending) {
      op.state_ = AsyncOpBase::State::Attempting;
      op.post_run();
    }
  }

  void register_op(AsyncOpBase& op) {
    op.registered_ = true;
    std::shared_ptr<AsyncWatch> w;
    try {
      WaitHandle h = op.make_handle();
      const int fd = h.fd();
      auto& slot = watches_[fd];
      if (slot && slot->ops.empty()) --idle_;
      if (!slot) {
        auto fresh = std::make_shared<AsyncWatch>(ex_, std::move(h));
        try {
          fresh->sd.assign(fd);
        } catch (...) {
          watches_.erase(fd);
          throw;
        }
        slot = std::move(fresh);
      }
      w = slot;
      w->ops.push_back(op.shared_from_this());
      op.watch_ = w;
      ++pending_;
      // The wait first (asio's epoll registration is edge-triggered: a ring
      // with no wait queued would be lost), then the arm, then the retry.
      ensure_wait(w);
      ensure_tick();
      // The arm empties the descriptor, and with it a ring not yet seen by
      // the reactor (its edge is dropped): every operation on it re-tries.
      (void)w->handle.arm();
      for (const auto& other : w->ops) request_locked(*other, AsyncOpBase::kRetry);
      op.requests_ |= AsyncOpBase::kRetry;
    } catch (...) {
      op.error_ = std::current_exception();
      op.requests_ |= AsyncOpBase::kFail;
    }
  }

  // A watch without operations keeps its registration (and its wait handle,
  // so the next operation on the object finds the same descriptor) but
  // waits no more: an idle io_context's run() returns. At most kMaxIdle
  // idle watches are kept.
  static constexpr std::size_t kMaxIdle = 1024;
  void park(const std::shared_ptr<AsyncWatch>& w) {
    if (w->waiting) {
      boost::system::error_code ec;
      w->sd.cancel(ec);
      w->waiting = false;
    }
    if (++idle_ <= kMaxIdle) return;
    for (auto it = watches_.begin(); it != watches_.end() && idle_ > kMaxIdle / 2;) {
      const auto here = it++;
      if (here->second->ops.empty()) {
        (void)here->second->sd.release();
        watches_.erase(here);
        --idle_;
      }
    }
  }

  void ensure_wait(const std::shared_ptr<AsyncWatch>& w) {
    if (w->waiting || !w->sd.is_open()) return;
    w->waiting = true;
    const unsigned gen = ++w->generation;
    w->sd.async_wait(asio::posix::stream_descriptor::wait_read,
                     [this, w, gen](const boost::system::error_code& ec) { on_readable(w, gen, ec); });
  }

  void on_readable(const std::shared_ptr<AsyncWatch>& w, unsigned gen, const boost::system::error_code& ec) {
    std::lock_guard g(m_);
    if (gen != w->generation) return;  // a wait cancelled when the watch went idle
    w->waiting = false;
    if (shut_ || w->ops.empty() || ec == asio::error::operation_aborted) return;
    if (ec) return;  // the tick re-queues the wait (and re-tries meanwhile)
    ensure_wait(w);
    rearm_and_retry(*w);
  }

  void rearm_and_retry(AsyncWatch& w) {
    try {
      (void)w.handle.arm();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a handle that cannot arm is re-tried by the tick
    }
    for (const auto& op : w.ops) request_locked(*op, AsyncOpBase::kRetry);
  }

  void ensure_tick() {
    if (ticking_ || shut_) return;
    ticking_ = true;
    tick_->expires_after(kLivenessInterval);
    tick_->async_wait([this](const boost::system::error_code& ec) { on_tick(ec); });
  }

  void on_tick(const boost::system::error_code& ec) {
    std::lock_guard g(m_);
    ticking_ = false;
    if (shut_ || ec == asio::error::operation_aborted || pending_ == 0) return;
    for (auto& [fd, w] : watches_) {
      if (w->ops.empty()) continue;
      ensure_wait(w);
      rearm_and_retry(*w);
    }
    ensure_tick();
  }

  std::mutex m_;
  asio::any_io_executor ex_;
  std::optional<asio::steady_timer> tick_;
  bool ticking_ = false;
  bool shut_ = false;
  std::size_t pending_ = 0;  // registered operations not done
  std::size_t idle_ = 0;     // watches without operations
  std::unordered_map<int, std::shared_ptr<AsyncWatch>> watches_;
};

inline void AsyncOpBase::cancel() { svc_.request(*this, kCancel); }

struct AsyncUnit {};  // the result of an operation without a value

template <class R>
struct AsyncSignature {
  using type = void(std::exception_ptr, R);
};
template <>
struct AsyncSignature<AsyncUnit> {
  using type = void(std::exception_ptr);
};

// The executor a handler completes on, kept with outstanding work.
template <class Ex>
auto tracked(const Ex& ex) {
  if constexpr (asio::execution::is_executor<Ex>::value) {
    return asio::prefer(ex, asio::execution::outstanding_work.tracked);
  } else {
    return asio::executor_work_guard<Ex>(ex);
  }
}
// The service's own executor: a strand's inner one (its descriptors and
// timers need no strand, and must not wait behind the user's handlers).
template <class Ex>
asio::any_io_executor service_executor(const Ex& ex) {
  if constexpr (requires { ex.get_inner_executor(); }) {
    return service_executor(ex.get_inner_executor());
  } else {
    return asio::any_io_executor(ex);
  }
}
template <class Ex>
asio::execution_context& context_of(const Ex& ex) {
  if constexpr (asio::execution::is_executor<Ex>::value) {
    return asio::query(ex, asio::execution::context);
  } else {
    return ex.context();
  }
}

// Act: the operation proper (see the *Act structs below).
template <class Act, class Handler, class Executor>
class AsyncOp final : public AsyncOpBase {
  using Result = typename Act::Result;
  using Work = decltype(tracked(std::declval<const Executor&>()));

 public:
  AsyncOp(AsyncService& svc, Act act, Handler handler, const Executor& ex)
      : AsyncOpBase(svc), act_(std::move(act)), handler_(std::move(handler)), work_(tracked(ex)) {}

#if IPCKIT_ASIO_CANCELLATION_SLOTS
  void bind_slot() {
    slot_ = asio::get_associated_cancellation_slot(handler_);
    if (slot_.is_connected())
      slot_.assign([w = std::weak_ptr<AsyncOpBase>(shared_from_this())](asio::cancellation_type) {
        if (auto op = w.lock()) op->cancel();
      });
  }
#endif

 private:
  void post_run() override {
    auto self = std::static_pointer_cast<AsyncOp>(shared_from_this());
    asio::post(executor(), [self = std::move(self)] { self->run(); });
  }
  WaitHandle make_handle() override { return act_.handle(); }

  auto executor() const {
    if constexpr (asio::execution::is_executor<Executor>::value) {
      return work_;
    } else {
      return work_.get_executor();
    }
  }

  // In the handler's executor: at most one at a time per operation.
  void run() {
    for (;;) {
      const unsigned req = svc_.take_requests(*this);
      std::optional<Result> r;
      std::exception_ptr e;
      if (req & kFail) {
        e = error_;
      } else if (req & kCancel) {
        e = std::make_exception_ptr(Cancelled(act_.label(), "ipckit: the asynchronous " + std::string(Act::kWhat) +
                                                                " on " + act_.label() +
                                                                " was cancelled (its CancelSignal was emitted)"));
      } else {
        try {
          r = (req & kTimeout) ? std::optional<Result>(act_.last()) : act_.attempt();
        } catch (...) {
          e = std::current_exception();
        }
      }
      if (e || r) return complete(e, std::move(r));
      if (svc_.settle(*this)) return;
    }
  }

  void complete(std::exception_ptr e, std::optional<Result> r) {
    if (!svc_.finish(*this)) return;
#if IPCKIT_ASIO_CANCELLATION_SLOTS
    if (slot_.is_connected()) slot_.clear();
#endif
    // Invoked here: run() is already in the handler's executor, and a lock
    // taken by the attempt is held by this thread.
    Handler h(std::move(handler_));
    auto work = std::move(work_);
    if constexpr (std::is_same_v<Result, AsyncUnit>) {
      std::move(h)(e);
    } else {
      std::move(h)(e, r ? std::move(*r) : Result{});
    }
    (void)work;
  }

  Act act_;
  Handler handler_;
  Work work_;
#if IPCKIT_ASIO_CANCELLATION_SLOTS
  asio::associated_cancellation_slot_t<Handler> slot_;
#endif
};

// ---- The operations: attempt() (nullopt: not yet), last() (at the timeout).

template <class Q>
struct GetAct {
  using Result = std::decay_t<decltype(std::declval<Q&>().get_nowait())>;
  static constexpr const char* kWhat = "get";
  Q q;
  WaitHandle handle() const { return q.wait_handle(); }
  std::string label() const { return q.label(); }
  std::optional<Result> attempt() {
    if (auto v = q.try_get()) return v;
    if (q.closed()) {  // drained (Closed), or an item came meanwhile
      try {
        return q.get_nowait();
      } catch (const Empty&) {  // its consumers' lock was busy: again later
      }
    }
    return std::nullopt;
  }
  Result last() { return q.get_nowait(); }
};

template <class Q, class Stored, class... Pre>
struct PutAct {
  using Result = AsyncUnit;
  static constexpr const char* kWhat = "put";
  Q q;
  std::tuple<Pre...> pre;  // a priority
  Stored item;
  WaitHandle handle() const { return q.put_wait_handle(); }
  std::string label() const { return q.label(); }
  std::optional<Result> attempt() {
    if (call([&](auto&... a) { return q.try_put(a...); })) return Result{};
    if (q.closed()) {
      try {
        call([&](auto&... a) { q.put_nowait(a...); });  // Closed
        return Result{};
      } catch (const Full&) {
      }
    }
    return std::nullopt;
  }
  Result last() {
    call([&](auto&... a) { q.put_nowait(a...); });
    return {};
  }
  template <class F>
  decltype(auto) call(F&& f) {
    return std::apply([&](auto&... p) -> decltype(auto) { return f(p..., item); }, pre);
  }
};

// An Event set, an AnyFuture done.
template <class E>
struct EventAct {
  using Result = bool;
  static constexpr const char* kWhat = "wait";
  E e;
  WaitHandle handle() const { return e.wait_handle(); }
  std::string label() const {
    if constexpr (requires { e.label(); }) {
      return e.label();
    } else {
      return "a pool future";
    }
  }
  bool look() {
    if constexpr (requires { e.is_set(); }) {
      return e.is_set();
    } else {
      return e.ready();
    }
  }
  std::optional<bool> attempt() { return look() ? std::optional<bool>(true) : std::nullopt; }
  bool last() { return look(); }
};

template <class S>
struct AcquireAct {
  using Result = bool;
  static constexpr const char* kWhat = "acquire";
  S s;
  bool timed = false;
  WaitHandle handle() const { return s.wait_handle(); }
  std::string label() const { return s.label(); }
  bool take() {
    if constexpr (requires { s.try_acquire(); }) {
      return s.try_acquire();
    } else {
      // A Lock (not an RLock) this thread holds: lock() throws DeadlockDetected, as the blocking form.
      if constexpr (!requires { s.depth(); })
        if (!timed && s.held_by_me()) s.lock();
      return s.try_lock();
    }
  }
  std::optional<bool> attempt() { return take() ? std::optional<bool>(true) : std::nullopt; }
  bool last() { return take(); }
};

template <class F>
struct FutureAct {
  using Value = decltype(std::declval<F&>().get());
  using Result = std::conditional_t<std::is_void_v<Value>, AsyncUnit, Value>;
  static constexpr const char* kWhat = "get";
  F f;
  WaitHandle handle() const { return f.wait_handle(); }
  std::string label() const { return "a pool future"; }
  std::optional<Result> attempt() {
    if (!f.ready()) return std::nullopt;
    return last();
  }
  Result last() {
    if constexpr (std::is_void_v<Value>) {
      f.get(std::chrono::nanoseconds(0));
      return {};
    } else {
      return f.get(std::chrono::nanoseconds(0));  // Timeout if not done
    }
  }
};

// ---- Arguments: [executor or io_context,] values..., [timeout,] [CancelSignal,] token.

template <class T>
inline constexpr bool kAsyncDuration = false;
template <class R, class P>
inline constexpr bool kAsyncDuration<std::chrono::duration<R, P>> = true;

template <class T>
inline constexpr bool kAsyncExecutorArg =
    asio::execution::is_executor<T>::value || asio::is_executor<T>::value || std::is_base_of_v<asio::io_context, T>;

template <class>
inline constexpr bool kAsyncFalse = false;

// Executors that run work on Asio's system thread pool: a plain callback's
// (system_executor) and use_future's (its promise executor, which sets the
// promise from any thread). Operations with such handlers run on the
// io_context given first instead.
template <class Ex>
inline constexpr bool kSystemLikeExecutor = std::is_same_v<Ex, asio::system_executor>;
template <class T, class B>
inline constexpr bool kSystemLikeExecutor<asio::detail::promise_executor<T, B>> = true;

struct NoExecutor {};

struct AsyncExtras {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::shared_ptr<CancelState> cancel;
};

template <class Object>
struct AsyncOps {
  template <class... A>
  static auto get(Object& obj, A&&... a) {
    if constexpr (requires { obj.try_get(); }) {
      return launch<0>([&] { return GetAct<Object>{obj}; }, std::forward<A>(a)...);
    } else {
      return launch<0>([&] { return FutureAct<Object>{obj}; }, std::forward<A>(a)...);
    }
  }
  template <class Item, class... A>
  static auto put(Object& obj, A&&... a) {
    using Stored = std::conditional_t<std::is_same_v<Item, std::string_view>, std::string, Item>;
    return launch<1>([&](auto&& item) { return PutAct<Object, Stored>{obj, {}, Stored(item)}; }, std::forward<A>(a)...);
  }
  template <class Item, class... A>
  static auto put_prioritized(Object& obj, A&&... a) {
    return launch<2>(
        [&](auto&& priority, auto&& item) {
          return PutAct<Object, Item, std::int64_t>{obj, {static_cast<std::int64_t>(priority)}, Item(item)};
        },
        std::forward<A>(a)...);
  }
  template <class... A>
  static auto wait(Object& obj, A&&... a) {
    return launch<0>([&] { return EventAct<Object>{obj}; }, std::forward<A>(a)...);
  }
  template <class... A>
  static auto acquire(Object& obj, A&&... a) {
    return launch<0>([&] { return AcquireAct<Object>{obj}; }, std::forward<A>(a)...);
  }

 private:
  template <class X>
  static void add_extra(AsyncExtras& x, X&& v) {
    using D = std::decay_t<X>;
    if constexpr (kAsyncDuration<D>) {
      using namespace std::chrono;
      const auto now = steady_clock::now();
      // Clamp: a timeout of years means none, without overflowing the clock.
      const auto cap = duration_cast<duration<double>>(hours(24 * 365 * 100));
      x.deadline = duration_cast<duration<double>>(v) > cap ? now + duration_cast<steady_clock::duration>(cap)
                                                            : now + ceil<steady_clock::duration>(v);
    } else if constexpr (std::is_same_v<D, CancelSignal>) {
      x.cancel = v.s_;
    } else {
      static_assert(kAsyncFalse<D>,
                    "ipckit async operations take [executor or io_context,] the operation's values, "
                    "[a std::chrono::duration timeout,] [an ipckit::CancelSignal,] then the completion token");
    }
  }

  template <class X>
  static auto io_executor(X& x) {
    if constexpr (std::is_base_of_v<asio::io_context, std::decay_t<X>>) {
      return x.get_executor();
    } else {
      return x;
    }
  }

  template <std::size_t N, class Make, class... A>
  static auto launch(Make make, A&&... a) {
    static_assert(sizeof...(A) >= N + 1, "ipckit async operations end with a completion token");
    auto args = std::forward_as_tuple(std::forward<A>(a)...);
    using First = std::decay_t<std::tuple_element_t<0, std::tuple<A...>>>;
    constexpr std::size_t off = (sizeof...(A) >= N + 2 && kAsyncExecutorArg<First>) ? 1 : 0;
    constexpr std::size_t extras = sizeof...(A) - 1 - off - N;
    return [&]<std::size_t... P, std::size_t... X>(std::index_sequence<P...>, std::index_sequence<X...>) {
      AsyncExtras x;
      (add_extra(x, std::get<off + N + X>(args)), ...);
      auto act = make(std::get<off + P>(args)...);
      if constexpr (requires { act.timed; }) act.timed = x.deadline.has_value();
      auto&& token = std::get<sizeof...(A) - 1>(args);
      if constexpr (off == 1) {
        return initiate(std::move(act), std::move(x), io_executor(std::get<0>(args)),
                        std::forward<decltype(token)>(token));
      } else {
        return initiate(std::move(act), std::move(x), NoExecutor{}, std::forward<decltype(token)>(token));
      }
    }
    (std::make_index_sequence<N>{}, std::make_index_sequence<extras>{});
  }

  template <class Act, class IoEx, class Token>
  static auto initiate(Act act, AsyncExtras x, IoEx io_ex, Token&& token) {
    using Sig = typename AsyncSignature<typename Act::Result>::type;
    return asio::async_initiate<Token, Sig>(
        [](auto handler, Act act, AsyncExtras x, IoEx io_ex) {
          using H = decltype(handler);
          auto ex = [&] {
            if constexpr (std::is_same_v<IoEx, NoExecutor>) {
              static_assert(!kSystemLikeExecutor<asio::associated_executor_t<H>>,
                            "this completion handler has no executor of its own (a plain callback, use_future): "
                            "pass the io_context (or an executor) first, e.g. q.async_get(io, handler)");
              return asio::get_associated_executor(handler);
            } else if constexpr (kSystemLikeExecutor<asio::associated_executor_t<H, IoEx>>) {
              return io_ex;
            } else {
              return asio::get_associated_executor(handler, io_ex);
            }
          }();
          // The service of the io executor's context (the handler's when none is given).
          AsyncService* svc = nullptr;
          if constexpr (std::is_same_v<IoEx, NoExecutor>) {
            svc = &asio::use_service<AsyncService>(context_of(ex));
            svc->adopt(service_executor(ex));
          } else {
            svc = &asio::use_service<AsyncService>(context_of(io_ex));
            svc->adopt(service_executor(io_ex));
          }
          using Op = AsyncOp<Act, H, decltype(ex)>;
          auto op = std::make_shared<Op>(*svc, std::move(act), std::move(handler), ex);
#if IPCKIT_ASIO_CANCELLATION_SLOTS
          op->bind_slot();
#endif
          svc->start(op, x.deadline);
          if (x.cancel) {
            bool emitted = false;
            {
              std::lock_guard g(x.cancel->m);
              emitted = x.cancel->emitted;
              if (!emitted) {
                auto& ops = x.cancel->ops;
                if (ops.size() >= 64 && (ops.size() & (ops.size() - 1)) == 0)
                  std::erase_if(ops, [](const auto& w) { return w.expired(); });
                ops.push_back(op);
              }
            }
            if (emitted) op->cancel();
          }
        },
        token, std::move(act), std::move(x), std::move(io_ex));
  }
};

}  // namespace detail

inline void CancelSignal::emit() {
  std::vector<std::weak_ptr<detail::AsyncOpBase>> ops;
  {
    std::lock_guard g(s_->m);
    s_->emitted = true;
    ops.swap(s_->ops);
  }
  for (const auto& w : ops)
    if (auto op = w.lock()) op->cancel();
}

}  // namespace ipckit
