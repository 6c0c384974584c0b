// pool.cpp — ProcessPool: forked workers that claim tasks in the pool's slot
// table, results taken by whoever waits for them, and a collector thread
// that watches the workers (see pool.hpp and detail/pool_state.hpp).
#include "ipckit/pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <thread>

#include "ipckit/current_process.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/pool_start.hpp"
#include "ipckit/detail/pool_state.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/process.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/value.hpp"

namespace ipckit {
namespace detail {

namespace {

// A task as it travels to a worker: this header, then the encoded arguments.
struct TaskHeader {
  std::uint32_t slot;
  std::uint32_t gen;
  std::uint64_t invoke;  // InvokeFn
  std::uint64_t fn;
};
// A result as it travels back: this header, then the encoded result or, for
// an error, "<type name>\0<what()>".
struct ResultHeader {
  std::uint32_t slot;
  std::uint32_t gen;
  std::uint32_t kind;  // kResultOk, kResultThrew, kResultTooLarge
  std::uint32_t unused;
};
constexpr std::uint32_t kResultOk = 0;
constexpr std::uint32_t kResultThrew = 1;     // body: "<type>\0<what>"
constexpr std::uint32_t kResultTooLarge = 2;  // body: the result's size

// How often the collector looks at the workers when nothing wakes it (how
// soon a dead worker's task fails; a look costs about 60 µs of CPU).
constexpr auto kCollectorTick = std::chrono::milliseconds(100);
// How long a sleeper sleeps before it looks again on its own: only a peer
// killed between a change and its wake call makes that matter.
constexpr auto kSleeperTick = std::chrono::milliseconds(100);

// One cache line of the pool's table, as a segment array holds it.
struct alignas(64) Line {
  unsigned char bytes[64];
};

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// "<type>\0<what>" of the exception being handled.
std::string describe_current_exception() {
  std::string out = current_exception_type_name();
  out.push_back('\0');
  try {
    throw;
  } catch (const std::exception& e) {
    out += e.what();
  } catch (...) {
    out += "(not a std::exception)";
  }
  return out;
}

// "250 ms", "1.5 s".
std::string duration_text(std::chrono::nanoseconds d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  char text[32];
  if (ms < 1000)
    std::snprintf(text, sizeof text, "%.4g ms", ms);
  else
    std::snprintf(text, sizeof text, "%.4g s", ms / 1000);
  return text;
}

std::atomic<unsigned> g_pools{0};

// This process's pools, numbered: names the segment and an unnamed pool.
std::string pool_serial() { return std::to_string(::getpid()) + "-" + std::to_string(g_pools.fetch_add(1)); }

std::size_t ring_bytes(std::size_t max_message) {
  const std::size_t want = std::max<std::size_t>(std::size_t{1} << 20, 4 * (max_message + 64));
  return std::min<std::size_t>(std::bit_ceil(want), std::size_t{1} << 27);
}

template <class T>
T* construct_lines(RawArray<Line>& lines, std::size_t n) {
  static_assert(sizeof(T) == sizeof(Line) && alignof(T) == alignof(Line));
  T* first = reinterpret_cast<T*>(lines.begin());
  for (std::size_t i = 0; i < n; ++i) new (first + i) T();  // zero, as the new segment's bytes are
  return first;
}

}  // namespace

class PoolCore {
 public:
  PoolCore(PoolOptions options, const std::string& serial);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Null when no slot came free by the deadline.
  std::shared_ptr<FutureState> submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args, Deadline deadline);
  void shutdown(bool wait, bool cancel_futures);

  // For FutureState (called with the state's mutex not held, inside enter()/leave()).
  bool await(FutureState& st, std::uint32_t slot, std::uint32_t gen, Deadline deadline);
  bool cancel(std::uint32_t slot, std::uint32_t gen);
  bool running(std::uint32_t slot, std::uint32_t gen) const noexcept {
    const std::uint32_t w = slots_[slot].state.load(std::memory_order_acquire);
    return slot_kind(w) == SlotKind::Running && slot_gen(w) == (gen & kSlotGenMask);
  }
  // A thread about to use the pool through a pending future's pointer (with
  // the future's mutex held): the destructor waits until it leaves.
  void enter() noexcept { users_.fetch_add(1, std::memory_order_acq_rel); }
  void leave() noexcept { users_.fetch_sub(1, std::memory_order_acq_rel); }
  // A pending future got its first listener (with its mutex held).
  void listener_added();

  [[nodiscard]] unsigned workers() const noexcept { return count_; }
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  [[nodiscard]] std::uint64_t restarts() const noexcept { return counters_->restarts.load(); }
  [[nodiscard]] const std::string& name() const noexcept { return *name_; }
  [[nodiscard]] PoolStats stats() const;

 private:
  using How = std::function<void(FutureState&)>;
  void start_workers();
  void start_worker(unsigned w);
  [[noreturn]] void work(unsigned w);
  std::string run_task(const TaskHeader& h, std::string_view args, std::string& out);
  void collect();
  // Takes every result there is; how many.
  std::size_t harvest();
  // Settles the task in `slot` (generation `gen`) once: its future, then the slot.
  void complete(std::uint32_t slot, std::uint32_t gen, const How& how);
  void fail(std::uint32_t slot, std::uint32_t gen, std::exception_ptr error);
  void check_workers();
  void settle_dead_worker(unsigned w, pid_t pid, const std::optional<int>& code, bool replaced);
  // Kills the workers of tasks past the timeout; when the next one would be.
  std::chrono::nanoseconds enforce_timeouts();
  void cancel_queued();
  void fail_if_no_worker_left();
  void wake_collector() noexcept;
  [[noreturn]] void raise_closed() const;

  std::shared_ptr<const std::string> name_;
  unsigned count_;
  std::uint32_t nslots_;
  std::size_t max_message_;
  std::size_t results_max_;  // the results queue's max_message
  std::chrono::nanoseconds timeout_;
  unsigned retries_;
  Segment seg_;
  ByteQueue tasks_;
  ByteQueue results_;
  RawArray<Line> table_;
  PoolSlot* slots_;
  PoolWorkerRecord* worker_records_;
  PoolCounters* counters_;
  WorkerStarts starts_;  // the initializer's reports

  mutable std::mutex m_;  // guards everything below
  std::vector<Process> procs_;
  std::vector<bool> retired_;                         // ended and not replaced (the pool was closed)
  std::vector<std::shared_ptr<FutureState>> owners_;  // per slot: the future it completes
  std::vector<std::uint32_t> free_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_id_ = 0;
  bool closed_ = false;
  bool stopping_ = false;     // the collector ends once nothing is in flight
  std::string init_failure_;  // a replacement's initializer failed: that worker was not replaced
  std::condition_variable drained_;

  std::atomic<std::uint32_t> free_count_{0};
  std::atomic<bool> closing_{false};
  std::atomic<int> users_{0};
  std::atomic<int> listening_{0};         // pending futures with listeners: the collector takes results at once
  std::vector<std::uint32_t> timed_out_;  // collector only: per slot, 1 + the generation killed for its timeout
  std::thread collector_;
};

// ---------------------------------------------------------------- futures

std::string FutureState::label() const {
  return "task " + std::to_string(id) + " of pool '" + (pool_name ? *pool_name : std::string()) + "'";
}

void throw_bad_arguments(std::size_t left) {
  throw std::runtime_error("the task's arguments do not decode (" + std::to_string(left) +
                           " bytes where the next one or its length should end)");
}

void raise_invalid_future() {
  throw InvalidArgument("", "ipckit: this Future has no task (default-made); take one from ProcessPool::submit()");
}

namespace {

// Runs `use(pool, slot, gen)` if the future is pending, with the pool kept
// alive meanwhile; `done_value` otherwise.
template <class Use>
bool with_pool(FutureState& s, bool done_value, Use&& use) {
  PoolCore* pool = nullptr;
  std::uint32_t slot = 0;
  std::uint32_t gen = 0;
  {
    std::lock_guard lock(s.m);
    if (s.done.load(std::memory_order_relaxed) || s.pool == nullptr) return done_value;
    pool = s.pool;
    slot = s.slot;
    gen = s.gen;
    pool->enter();
  }
  struct Leave {
    PoolCore* p;
    ~Leave() { p->leave(); }
  } leave{pool};
  return use(*pool, slot, gen);
}

}  // namespace

bool FutureState::wait_by(Deadline deadline) {
  if (done.load(std::memory_order_acquire)) return true;
  const auto is_done = [&] { return done.load(std::memory_order_acquire); };
  if (with_pool(*this, true, [&](PoolCore& p, std::uint32_t slot, std::uint32_t gen) {
        return p.await(*this, slot, gen, deadline);
      }))
    return is_done();
  // Completed by another thread meanwhile: it sets `done` under the mutex.
  std::unique_lock lock(m);
  if (deadline.is_never()) {
    cv.wait(lock, is_done);
    return true;
  }
  return cv.wait_until(lock, deadline.when(), is_done);
}

void FutureState::add_listener(std::function<void()> fn) {
  {
    std::lock_guard lock(m);
    if (!done.load(std::memory_order_relaxed)) {
      if (listeners.empty() && pool != nullptr) pool->listener_added();
      listeners.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

bool cancel_future(FutureState& s) {
  if (with_pool(s, false, [&](PoolCore& p, std::uint32_t slot, std::uint32_t gen) { return p.cancel(slot, gen); }))
    return true;
  std::lock_guard lock(s.m);
  return s.cancelled;
}

bool future_running(FutureState& s) {
  return with_pool(s, false, [](PoolCore& p, std::uint32_t slot, std::uint32_t gen) { return p.running(slot, gen); });
}

// ---------------------------------------------------------------- the pool

PoolCore::PoolCore(PoolOptions options, const std::string& serial)
    : name_(std::make_shared<const std::string>(options.name.empty() ? "pool-" + serial : options.name)),
      count_(options.workers != 0 ? options.workers : cpu_count()),
      nslots_(static_cast<std::uint32_t>(std::min<std::size_t>(options.max_pending, 1u << 24) + count_)),
      max_message_(options.max_message),
      results_max_(options.max_message + sizeof(ResultHeader)),
      timeout_(options.task_timeout),
      retries_(options.retries),
      seg_([&] {
        const std::string& n = *name_;
        if (options.max_pending == 0)
          throw InvalidArgument(n, "ipckit: pool '" + n + "': max_pending 0 would take no task; use 1 or more");
        if (options.max_pending > (1u << 24))
          throw InvalidArgument(n, "ipckit: pool '" + n + "': max_pending " + std::to_string(options.max_pending) +
                                       " is more than 16777216; use fewer");
        if (count_ >= kSlotMaxWorkers)
          throw InvalidArgument(n, "ipckit: pool '" + n + "': " + std::to_string(count_) +
                                       " workers is more than a pool can have (" + std::to_string(kSlotMaxWorkers - 1) +
                                       "); use fewer");
        if (options.task_timeout.count() < 0)
          throw InvalidArgument(n, "ipckit: pool '" + n + "': a negative task_timeout; use 0 for none");
        const std::string seg = "ipckit.pool." + serial;
        const std::size_t ring = ring_bytes(options.max_message + sizeof(TaskHeader));
        const std::size_t table = sizeof(Line) * (std::size_t{nslots_} + count_ + 1);
        Segment s = Segment::create(seg, 2 * ring + table + (std::size_t{1} << 16));
        Segment::remove(seg);  // the workers are forked: they have the mapping, nobody needs the name
        return s;
      }()),
      tasks_(seg_.byte_queue("tasks", {.capacity_bytes = ring_bytes(options.max_message + sizeof(TaskHeader)),
                                       .max_message = options.max_message + sizeof(TaskHeader)})),
      results_(seg_.byte_queue("results", {.capacity_bytes = ring_bytes(options.max_message + sizeof(ResultHeader)),
                                           .max_message = options.max_message + sizeof(ResultHeader)})),
      table_(seg_.raw_array<Line>("table", std::size_t{nslots_} + count_ + 1)),
      slots_(construct_lines<PoolSlot>(table_, nslots_)),
      worker_records_([&] {
        PoolWorkerRecord* first = reinterpret_cast<PoolWorkerRecord*>(table_.begin() + nslots_);
        for (unsigned w = 0; w < count_; ++w) new (first + w) PoolWorkerRecord();
        return first;
      }()),
      counters_(new (table_.begin() + nslots_ + count_) PoolCounters()),
      starts_(*name_, options.initializer, count_),
      owners_(nslots_),
      timed_out_(nslots_, 0) {
  free_.reserve(nslots_);
  for (std::uint32_t i = nslots_; i > 0; --i) free_.push_back(i - 1);  // slot 0 first
  free_count_.store(nslots_);
  // The workers are forked by the collector thread, which lives as long as
  // the pool: a daemon child is killed when the THREAD that forked it ends
  // (process.hpp), and the thread that makes a pool may end before it.
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  collector_ = std::thread([this, &started] {
    try {
      start_workers();
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    started.set_value();
    collect();
  });
  try {
    ready.get();
  } catch (...) {
    collector_.join();
    throw;
  }
}

PoolCore::~PoolCore() {
  shutdown(true, false);
  // A thread may still be on its way out of a future's wait into the pool.
  while (users_.load(std::memory_order_acquire) != 0) yield_cpu();
}

void PoolCore::start_workers() {
  std::lock_guard lock(m_);
  procs_.reserve(count_);
  retired_.assign(count_, false);
  try {
    for (unsigned w = 0; w < count_; ++w) {
      procs_.emplace_back([] {});
      start_worker(w);
    }
    starts_.await_all(procs_);  // ProcessError if an initializer failed
  } catch (...) {  // a fork or an initializer failed: the workers started end once they see the queue closed
    tasks_.close();
    for (Process& p : procs_)
      if (p.pid() != 0) p.join();
    throw;
  }
}

void PoolCore::start_worker(unsigned w) {
  procs_[w] = Process([this, w] { work(w); }, {.name = *name_ + "-worker-" + std::to_string(w), .daemon = true});
  starts_.forking(w);
  procs_[w].start();
  starts_.forked(w);
  worker_records_[w].pid.store(procs_[w].pid());
  worker_records_[w].started_ns.store(monotonic_ns());
  worker_records_[w].tasks.store(0);
}

// ---------------------------------------------------------------- workers

// In the worker: wait for a task without holding the queue, take one
// through a view, claim its slot before letting the queue go (a second copy
// of the record finds the slot claimed and is dropped), run it, send the
// result back, and mark the slot.
void PoolCore::work(unsigned w) {
  set_pool_worker(true);  // current_process().pool_worker
  starts_.initialize(w);  // the initializer, before any task (ends the worker if it throws)
  std::string args;
  std::string reply;
  PoolCounters& counters = *counters_;
  for (;;) {
    std::optional<ByteView> view = tasks_.try_get_view();
    if (!view) {
      if (tasks_.closed() && tasks_.qsize() == 0) {
        run_worker_teardown();  // worker_local values, the last emplaced first
        std::_Exit(0);
      }
      (void)tasks_.wait_readable();
      continue;
    }
    TaskHeader h{};
    if (view->size() < sizeof h) continue;  // not a task: dropped as the view is released
    std::memcpy(&h, view->data(), sizeof h);
    if (h.slot >= nslots_) continue;
    PoolSlot& slot = slots_[h.slot];
    std::uint32_t queued = slot_word(SlotKind::Queued, 0, h.gen);
    if (!slot.state.compare_exchange_strong(queued, slot_word(SlotKind::Running, w, h.gen), std::memory_order_acq_rel))
      continue;  // cancelled, or a copy of a task claimed already
    slot.started_ns.store(monotonic_ns(), std::memory_order_relaxed);
    slot.attempts.fetch_add(1, std::memory_order_relaxed);
    args.assign(view->data() + sizeof h, view->size() - sizeof h);
    view.reset();  // frees the record: the next worker may take the next task

    const std::uint32_t kind = [&] {
      try {
        // The forked worker runs the pool's own code: the submitter's function addresses are its own.
        std::string out;
        reinterpret_cast<InvokeFn>(h.invoke)(h.fn, args.data(), args.size(), out);  // NOLINT(performance-no-int-to-ptr)
        reply.resize(sizeof(ResultHeader));
        reply += out;
        return kResultOk;
      } catch (...) {
        reply.resize(sizeof(ResultHeader));
        reply += describe_current_exception();
        return kResultThrew;
      }
    }();
    ResultHeader r{h.slot, h.gen, kind, 0};
    if (reply.size() > results_max_) {
      const std::size_t size = reply.size() - sizeof r;
      r.kind = kResultTooLarge;
      reply.resize(sizeof r);
      reply += std::to_string(size);
    }
    std::memcpy(reply.data(), &r, sizeof r);
    if (!results_.try_put(reply)) {  // full: nobody takes results now, so wake the collector to
      publish_change(counters.collector_seq, counters.collector_sleepers, 1);
      results_.put(reply);
    }
    worker_records_[w].tasks.fetch_add(1, std::memory_order_relaxed);
    // The result is queued: a thread waiting on the slot may take it now.
    std::uint32_t running = slot_word(SlotKind::Running, w, h.gen);
    if (slot.state.compare_exchange_strong(running, slot_word(SlotKind::Finishing, 0, h.gen)) &&
        must_wake(slot.waiting))
      wake_sleepers(slot.state, slot.waiting, INT32_MAX);
    if (must_wake(counters.done_sleepers)) publish_change(counters.done_seq, counters.done_sleepers, INT32_MAX);
    if (counters.collector_eager.load(std::memory_order_relaxed) != 0)
      publish_change(counters.collector_seq, counters.collector_sleepers, 1);
  }
}

// ---------------------------------------------------------------- submitting

std::shared_ptr<FutureState> PoolCore::submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args,
                                              Deadline deadline) {
  if (args.size() > max_message_)
    throw MessageTooLarge(*name_, "ipckit: pool '" + *name_ + "': a task's arguments of " +
                                      std::to_string(args.size()) + " bytes exceed the pool's max_message of " +
                                      std::to_string(max_message_) +
                                      " bytes; pass less, or make the pool with a larger max_message");
  auto st = std::make_shared<FutureState>();
  st->pool_name = name_;
  std::uint32_t index = 0;
  // A free slot: results taken back free theirs, so take them before waiting.
  for (;;) {
    {
      std::lock_guard lock(m_);
      if (closed_) raise_closed();
      if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
        free_count_.fetch_sub(1, std::memory_order_relaxed);
        ++in_flight_;
        st->id = ++next_id_;
        st->slot = index;
        st->gen = slot_gen(slots_[index].state.load(std::memory_order_relaxed));
        st->pool = this;
        owners_[index] = st;
        break;
      }
    }
    if (harvest() != 0) continue;
    if (deadline.passed()) return nullptr;
    (void)wait_for_change(
        counters_->done_seq, counters_->done_sleepers,
        [&] {
          return free_count_.load(std::memory_order_relaxed) != 0 || results_.qsize() != 0 ||
                 closing_.load(std::memory_order_relaxed);
        },
        deadline, kSleeperTick, [] {});
  }
  PoolSlot& slot = slots_[index];
  slot.task.store(st->id, std::memory_order_relaxed);
  slot.started_ns.store(0, std::memory_order_relaxed);
  slot.attempts.store(0, std::memory_order_relaxed);
  slot.state.store(slot_word(SlotKind::Queued, 0, st->gen), std::memory_order_release);
  try {
    ByteLoan loan = deadline.is_never() ? tasks_.loan(sizeof(TaskHeader) + args.size())
                                        : tasks_.loan_until(sizeof(TaskHeader) + args.size(), deadline.when());
    const TaskHeader h{index, st->gen, reinterpret_cast<std::uint64_t>(invoke), fn};
    std::memcpy(loan.data(), &h, sizeof h);
    if (!args.empty()) std::memcpy(loan.data() + sizeof h, args.data(), args.size());
    if (retries_ != 0) st->record.assign(loan.data(), sizeof h + args.size());
    loan.publish();
  } catch (...) {
    // Full (the ring's bytes, not the slots), or Closed: the task never was.
    const std::exception_ptr failure = std::current_exception();
    std::uint32_t queued = slot_word(SlotKind::Queued, 0, st->gen);
    if (slot.state.compare_exchange_strong(queued, slot_word(SlotKind::Finishing, 0, st->gen)))
      complete(index, st->gen, [&](FutureState& s) { s.error = failure; });
    try {
      std::rethrow_exception(failure);
    } catch (const Full&) {
      return nullptr;
    } catch (const Closed&) {
      raise_closed();
    }
  }
  counters_->submitted.fetch_add(1, std::memory_order_relaxed);
  return st;
}

void PoolCore::raise_closed() const {
  throw Closed(*name_, "ipckit: pool '" + *name_ + "' is shut down; submit to a pool that runs");
}

// ---------------------------------------------------------------- results

std::size_t PoolCore::harvest() {
  std::size_t n = 0;
  std::string body;
  while (std::optional<ByteView> view = results_.try_get_view()) {
    ResultHeader r{};
    if (view->size() < sizeof r) continue;  // not a result: dropped
    std::memcpy(&r, view->data(), sizeof r);
    body.assign(view->data() + sizeof r, view->size() - sizeof r);
    view.reset();  // the callbacks below may take long: let the results queue go first
    ++n;
    complete(r.slot, r.gen, [&](FutureState& s) {
      if (r.kind == kResultOk) {
        s.result.swap(body);
        counters_->succeeded.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      counters_->failed.fetch_add(1, std::memory_order_relaxed);
      const std::string label = s.label();
      if (r.kind == kResultTooLarge) {
        s.error = std::make_exception_ptr(
            MessageTooLarge(label, "ipckit: " + label + ": its result of " + body +
                                       " bytes exceeds the pool's max_message of " + std::to_string(max_message_) +
                                       " bytes; return less, or make the pool with a larger max_message"));
        return;
      }
      const std::size_t nul = body.find('\0');
      std::string type = body.substr(0, nul);
      std::string what = nul == std::string::npos ? std::string() : body.substr(nul + 1);
      s.error = task_failure(label, type, what);  // the registered type, or TaskError
    });
  }
  return n;
}

void PoolCore::complete(std::uint32_t index, std::uint32_t gen, const How& how) {
  std::shared_ptr<FutureState> st;
  {
    std::lock_guard lock(m_);
    if (index >= nslots_ || owners_[index] == nullptr || owners_[index]->gen != gen) return;  // settled already
    st = std::move(owners_[index]);
  }
  std::vector<std::function<void()>> listeners;
  {
    std::lock_guard lock(st->m);
    how(*st);
    st->pool = nullptr;
    st->record.clear();
    listeners.swap(st->listeners);
    st->done.store(true, std::memory_order_release);
  }
  st->cv.notify_all();
  if (!listeners.empty()) listening_.fetch_sub(1, std::memory_order_relaxed);
  for (auto& fn : listeners) {
    try {
      fn();
    } catch (...) {  // as Python's add_done_callback: a failing callback does not stop the others
    }
  }
  // The future is done before the slot moves on: a waiter that sees the
  // slot freed finds its future done.
  PoolSlot& slot = slots_[index];
  slot.state.store(slot_word(SlotKind::Free, 0, gen + 1), std::memory_order_seq_cst);
  if (must_wake(slot.waiting)) wake_sleepers(slot.state, slot.waiting, INT32_MAX);
  {
    std::lock_guard lock(m_);
    free_.push_back(index);
    free_count_.fetch_add(1, std::memory_order_relaxed);
    if (--in_flight_ == 0) drained_.notify_all();
  }
  if (must_wake(counters_->done_sleepers)) publish_change(counters_->done_seq, counters_->done_sleepers, INT32_MAX);
}

void PoolCore::fail(std::uint32_t index, std::uint32_t gen, std::exception_ptr error) {
  complete(index, gen, [&](FutureState& s) { s.error = std::move(error); });
}

// Polls, then sleeps on, the slot's word; takes the result itself once the
// worker marked it sent.
bool PoolCore::await(FutureState& st, std::uint32_t index, std::uint32_t gen, Deadline deadline) {
  PoolSlot& slot = slots_[index];
  const auto settled = [&] {
    return st.done.load(std::memory_order_acquire) || !slot_in_flight(slot.state.load(std::memory_order_acquire), gen);
  };
  for (;;) {
    if (!wait_for_change(slot.state, slot.waiting, settled, deadline, kSleeperTick, [] {}))
      return st.done.load(std::memory_order_acquire);
    if (st.done.load(std::memory_order_acquire)) return true;
    // Its result is queued, or another thread is settling it right now.
    if (harvest() == 0) yield_cpu();
  }
}

void PoolCore::listener_added() {
  if (listening_.fetch_add(1, std::memory_order_relaxed) == 0) wake_collector();
}

void PoolCore::wake_collector() noexcept { publish_change(counters_->collector_seq, counters_->collector_sleepers, 1); }

bool PoolCore::cancel(std::uint32_t index, std::uint32_t gen) {
  std::uint32_t queued = slot_word(SlotKind::Queued, 0, gen);
  if (!slots_[index].state.compare_exchange_strong(queued, slot_word(SlotKind::Finishing, 0, gen))) return false;
  counters_->cancelled.fetch_add(1, std::memory_order_relaxed);
  complete(index, gen, [](FutureState& s) {
    const std::string label = s.label();
    s.cancelled = true;
    s.error = std::make_exception_ptr(Cancelled(label, "ipckit: " + label + " was cancelled before a worker took it"));
  });
  return true;
}

// ---------------------------------------------------------------- the collector

void PoolCore::collect() {
  PoolCounters& c = *counters_;
  for (;;) {
    bool eager = false;
    {
      std::lock_guard lock(m_);
      if (stopping_ && in_flight_ == 0) break;
      eager = stopping_;
    }
    eager = eager || listening_.load(std::memory_order_relaxed) != 0;
    c.collector_eager.store(eager ? 1 : 0, std::memory_order_relaxed);
    std::chrono::nanoseconds nap = kCollectorTick;
    if (timeout_.count() != 0) nap = std::min(nap, enforce_timeouts());
    // Eager: any result wakes this thread. Else a worker wakes it only when
    // the results queue is full, and a listener or shutdown does.
    const std::uint32_t seen = c.collector_seq.load(std::memory_order_seq_cst);
    (void)wait_for_change(
        c.collector_seq, c.collector_sleepers,
        [&] { return c.collector_seq.load(std::memory_order_relaxed) != seen || (eager && results_.qsize() != 0); },
        Deadline::after(nap), kSleeperTick, [] {});
    (void)harvest();
    check_workers();
  }
  // The workers end once they find the queue closed. Wait for them in this
  // thread: they are killed when it ends (PDEATHSIG), which would cut their
  // worker_local teardown short.
  std::lock_guard lock(m_);
  for (Process& p : procs_)
    if (p.pid() != 0) p.join();
}

// A dead worker: its results first (a result sent before it died wins),
// then its task fails or runs again, then a new worker takes its place.
void PoolCore::check_workers() {
  for (unsigned w = 0; w < count_; ++w) {
    pid_t pid = 0;
    std::optional<int> code;
    {
      std::lock_guard lock(m_);
      if (retired_[w] || procs_[w].is_alive()) continue;
      pid = procs_[w].pid();
      code = procs_[w].exitcode();
    }
    (void)harvest();
    // A worker ends by itself only on the closed, drained queue; one that
    // died is replaced, unless the pool is closed and nothing is left to take.
    bool replace = false;
    {
      std::lock_guard lock(m_);
      replace = !closed_ || (code != 0 && tasks_.qsize() != 0);
      // A worker whose initializer failed is not replaced: the next would fail too, in a loop.
      if (std::optional<std::string> failed = starts_.failure_of(w, procs_[w])) {
        replace = false;
        init_failure_ = std::move(*failed);
      }
    }
    settle_dead_worker(w, pid, code, replace);
    std::lock_guard lock(m_);
    procs_[w].join();
    worker_records_[w].pid.store(0);
    if (!replace) {
      retired_[w] = true;
      continue;
    }
    start_worker(w);
    counters_->restarts.fetch_add(1);
  }
  fail_if_no_worker_left();
}

// No worker left because a replacement's initializer failed: nobody will
// take the tasks, so they fail (also those submitted later, at the next look).
void PoolCore::fail_if_no_worker_left() {
  {
    std::lock_guard lock(m_);
    if (init_failure_.empty() || std::find(retired_.begin(), retired_.end(), false) != retired_.end()) return;
  }
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) != SlotKind::Queued ||
        !slots_[i].state.compare_exchange_strong(word, slot_word(SlotKind::Finishing, 0, slot_gen(word))))
      continue;
    counters_->failed.fetch_add(1);
    complete(i, slot_gen(word), [&](FutureState& s) {
      const std::string label = s.label();
      s.error = std::make_exception_ptr(
          WorkerDied(label, "ipckit: " + label + " failed: pool '" + *name_ +
                                "' has no worker left: a replacement worker's initializer failed: " + init_failure_ +
                                ". Fix the initializer (PoolOptions::initializer) and make a new pool"));
    });
  }
  while (tasks_.try_get_view()) {  // their records: nobody would take them
  }
}

void PoolCore::settle_dead_worker(unsigned w, pid_t pid, const std::optional<int>& code, bool replaced) {
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    PoolSlot& slot = slots_[i];
    std::uint32_t word = slot.state.load(std::memory_order_acquire);
    if (slot_kind(word) != SlotKind::Running || slot_worker(word) != w) continue;
    const std::uint32_t gen = slot_gen(word);
    const bool timed_out = timed_out_[i] == gen + 1;
    timed_out_[i] = 0;
    // Retried: queued again, as it was (its record is kept by its future).
    if (!timed_out && slot.attempts.load() <= retries_) {
      std::string record;
      {
        std::lock_guard lock(m_);
        if (owners_[i] != nullptr) record = owners_[i]->record;
      }
      if (!record.empty() && slot.state.compare_exchange_strong(word, slot_word(SlotKind::Queued, 0, gen))) {
        if (tasks_.try_put(record)) continue;
        word = slot_word(SlotKind::Queued, 0, gen);  // no room: it fails below
      }
    }
    if (!slot.state.compare_exchange_strong(word, slot_word(SlotKind::Finishing, 0, gen))) continue;
    const std::string tail = replaced ? " (the pool started a new worker)" : "";
    if (timed_out) {
      counters_->timed_out.fetch_add(1);
      complete(i, gen, [&](FutureState& s) {
        const std::string label = s.label();
        s.error = std::make_exception_ptr(Timeout(label, "ipckit: " + label + " ran past the pool's task_timeout of " +
                                                             duration_text(timeout_) + ": its worker, pid " +
                                                             std::to_string(pid) + ", was killed" + tail));
      });
      continue;
    }
    counters_->failed.fetch_add(1);
    complete(i, gen, [&](FutureState& s) {
      const std::string label = s.label();
      const unsigned runs = slot.attempts.load();
      s.error = std::make_exception_ptr(WorkerDied(
          label, "ipckit: " + label + " failed: its worker, pid " + std::to_string(pid) + ", " + describe_exit(code) +
                     " while running it" + (runs > 1 ? " (run " + std::to_string(runs) + " times)" : "") + tail));
    });
  }
}

std::chrono::nanoseconds PoolCore::enforce_timeouts() {
  const std::uint64_t now = monotonic_ns();
  const auto limit = static_cast<std::uint64_t>(timeout_.count());
  std::uint64_t next = limit;
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    const std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) != SlotKind::Running) continue;
    const std::uint64_t started = slots_[i].started_ns.load(std::memory_order_relaxed);
    if (started == 0 || started > now) continue;  // it is starting: looked at next time
    if (now - started < limit) {
      next = std::min(next, limit - (now - started));
      continue;
    }
    if (timed_out_[i] == slot_gen(word) + 1) continue;  // killed already, not reaped yet
    pid_t pid = 0;
    {
      std::lock_guard lock(m_);
      const unsigned w = slot_worker(word);
      if (w < count_ && procs_[w].is_alive()) pid = procs_[w].pid();
    }
    // Still running that task? (It may have finished since the look above.)
    if (pid == 0 || slots_[i].state.load(std::memory_order_acquire) != word) continue;
    timed_out_[i] = slot_gen(word) + 1;
    ::kill(pid, SIGKILL);
    next = 0;  // reap it at once
  }
  return std::chrono::nanoseconds(std::max<std::uint64_t>(next, 1'000'000));
}

// ---------------------------------------------------------------- shutdown

// Cancels the tasks no worker has taken. (One submitted meanwhile may still
// run: as Python's cancel_futures, this is best effort.)
void PoolCore::cancel_queued() {
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    const std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) == SlotKind::Queued) (void)cancel(i, slot_gen(word));
  }
}

void PoolCore::shutdown(bool wait, bool cancel_futures) {
  {
    std::lock_guard lock(m_);
    closed_ = true;
  }
  closing_.store(true);
  if (cancel_futures) cancel_queued();
  tasks_.close();                                                            // workers drain what is queued, then end
  publish_change(counters_->done_seq, counters_->done_sleepers, INT32_MAX);  // submitters waiting for a slot
  if (!wait) return;
  {
    std::lock_guard lock(m_);
    stopping_ = true;
  }
  wake_collector();
  {
    std::unique_lock lock(m_);
    drained_.wait(lock, [&] { return in_flight_ == 0; });
  }
  if (collector_.joinable()) collector_.join();
  std::lock_guard lock(m_);
  for (Process& p : procs_)
    if (p.pid() != 0) p.join();
}

// ---------------------------------------------------------------- looking

std::vector<pid_t> PoolCore::worker_pids() const {
  std::lock_guard lock(m_);
  std::vector<pid_t> out;
  for (const Process& p : procs_)
    if (p.is_alive()) out.push_back(p.pid());
  return out;
}

PoolStats PoolCore::stats() const {
  PoolStats out;
  out.workers = count_;
  out.restarts = counters_->restarts.load();
  out.submitted = counters_->submitted.load();
  out.succeeded = counters_->succeeded.load();
  out.failed = counters_->failed.load();
  out.timed_out = counters_->timed_out.load();
  out.cancelled = counters_->cancelled.load();
  out.per_worker.resize(count_);
  for (unsigned w = 0; w < count_; ++w) {
    out.per_worker[w].index = w;
    out.per_worker[w].pid = worker_records_[w].pid.load();
    out.per_worker[w].tasks_done = worker_records_[w].tasks.load();
  }
  const std::uint64_t now = monotonic_ns();
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    const std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) == SlotKind::Queued) ++out.pending;
    if (slot_kind(word) != SlotKind::Running) continue;
    ++out.running;
    const unsigned w = slot_worker(word);
    if (w >= count_) continue;
    out.per_worker[w].task = slots_[i].task.load();
    const std::uint64_t started = slots_[i].started_ns.load();
    if (started != 0 && started <= now) out.per_worker[w].running_for = std::chrono::nanoseconds(now - started);
  }
  {
    std::lock_guard lock(m_);
    for (const Process& p : procs_) out.workers_alive += p.is_alive() ? 1 : 0;
  }
  return out;
}

}  // namespace detail

ProcessPool::ProcessPool(PoolOptions options)
    : core_(std::make_unique<detail::PoolCore>(std::move(options), detail::pool_serial())) {}
ProcessPool::~ProcessPool() = default;

std::shared_ptr<detail::FutureState> ProcessPool::submit_bytes(std::uintptr_t fn, detail::InvokeFn invoke,
                                                               std::string_view args, detail::Deadline deadline) {
  return core_->submit(fn, invoke, args, deadline);
}
void ProcessPool::raise_full() const {
  throw Full(name(), "ipckit: pool '" + name() +
                         "' has max_pending tasks waiting for a worker; wait longer, or make the pool with a larger "
                         "max_pending");
}
void ProcessPool::shutdown(bool wait, bool cancel_futures) { core_->shutdown(wait, cancel_futures); }
unsigned ProcessPool::workers() const noexcept { return core_->workers(); }
std::vector<pid_t> ProcessPool::worker_pids() const { return core_->worker_pids(); }
std::uint64_t ProcessPool::restarts() const noexcept { return core_->restarts(); }
const std::string& ProcessPool::name() const noexcept { return core_->name(); }
PoolStats ProcessPool::stats() const { return core_->stats(); }

}  // namespace ipckit
