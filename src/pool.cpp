// pool.cpp — ProcessPool: forked workers that claim tasks in the pool's slot
// table, results taken by whoever waits for them (see pool.hpp and
// detail/pool_state.hpp); the collector thread is in pool_collector.cpp.
#include "ipckit/pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include "ipckit/current_process.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/pool_start.hpp"
#include "ipckit/detail/pool_state.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/pool_tasks.hpp"
#include "ipckit/process.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/value.hpp"
#include "pool_core.hpp"
#include "pool_internal.hpp"

namespace ipckit {
namespace detail {

namespace {

std::atomic<unsigned> g_pools{0};

// This process's pools, numbered: names the segment and an unnamed pool.
std::string pool_serial() { return std::to_string(::getpid()) + "-" + std::to_string(g_pools.fetch_add(1)); }

}  // namespace

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
  // A PoolCore's pending future has its pool (set and cleared with `done`,
  // under m); one of another engine (finish_future) never does.
  const bool pooled = [&] {
    std::lock_guard lock(m);
    return pool != nullptr;
  }();
  if (pooled && with_pool(*this, true, [&](PoolCore& p, std::uint32_t slot, std::uint32_t gen) {
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

void finish_future(FutureState& st, std::string result, std::exception_ptr error) {
  std::vector<std::function<void()>> listeners;
  {
    std::lock_guard lock(st.m);
    if (st.done.load(std::memory_order_relaxed)) return;
    st.result = std::move(result);
    st.error = std::move(error);
    st.record.clear();
    listeners.swap(st.listeners);
    st.done.store(true, std::memory_order_release);
  }
  st.cv.notify_all();
  for (auto& fn : listeners) {
    try {
      fn();
    } catch (...) {  // as Python's add_done_callback: a failing callback does not stop the others
    }
  }
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

namespace {

// A fork pool: its options checked, its segment made (and its name removed:
// the workers are forked, they inherit the mapping).
PoolSetup fork_setup(const PoolOptions& options, const std::string& serial) {
  PoolSetup s;
  s.name = options.name.empty() ? "pool-" + serial : options.name;
  s.workers = options.workers != 0 ? options.workers : cpu_count();
  s.timeout = options.task_timeout;
  s.retries = options.retries;
  s.initializer = options.initializer;
  const std::string& n = s.name;
  if (options.max_pending == 0)
    throw InvalidArgument(n, "ipckit: pool '" + n + "': max_pending 0 would take no task; use 1 or more");
  if (options.max_pending > (1u << 24))
    throw InvalidArgument(n, "ipckit: pool '" + n + "': max_pending " + std::to_string(options.max_pending) +
                                 " is more than 16777216; use fewer");
  if (s.workers >= kSlotMaxWorkers)
    throw InvalidArgument(n, "ipckit: pool '" + n + "': " + std::to_string(s.workers) +
                                 " workers is more than a pool can have (" + std::to_string(kSlotMaxWorkers - 1) +
                                 "); use fewer");
  if (options.task_timeout.count() < 0)
    throw InvalidArgument(n, "ipckit: pool '" + n + "': a negative task_timeout; use 0 for none");
  const auto nslots = static_cast<std::uint32_t>(options.max_pending + s.workers);
  const std::string seg = "ipckit.pool." + serial;
  Segment made = Segment::create(seg, PoolSegment::bytes(options.max_message, nslots, 1, s.workers),
                                 PoolSegment::segment_options(1, s.workers));
  Segment::remove(seg);
  s.shm = PoolSegment::bind(std::move(made), options.max_message, nslots, 1, s.workers);
  return s;
}

}  // namespace

PoolCore::PoolCore(PoolSetup setup)
    : name_(std::make_shared<const std::string>(std::move(setup.name))),
      count_(setup.workers),
      nslots_(setup.shm->per_channel),
      max_message_(setup.shm->max_message),
      timeout_(setup.timeout),
      retries_(setup.retries),
      shm_(std::move(*setup.shm)),
      channel_(setup.channel),
      owner_(setup.owner),
      tasks_(shm_.tasks),
      results_(shm_.results.at(channel_)),
      slots_(shm_.slots + std::size_t{channel_} * shm_.per_channel),
      worker_records_(shm_.worker_records),
      counters_(shm_.counters),
      chan_(shm_.channel_records + channel_),
      starts_(*name_, setup.initializer, count_),
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

// In a forked worker: the initializer, the loop, the worker_local teardown.
void PoolCore::work(unsigned w) {
  set_pool_worker(true);  // current_process().pool_worker
  starts_.initialize(w);  // the initializer, before any task (ends the worker if it throws)
  WorkerLoop{.shm = shm_, .index = w, .pool = *name_}.run();
  run_worker_teardown();  // worker_local values, the last emplaced first
  std::_Exit(0);
}

// ---------------------------------------------------------------- submitting

std::shared_ptr<FutureState> PoolCore::submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args,
                                              Deadline deadline) {
  std::string task_name;  // a named pool's records carry the task's name, never its address
  bool chunk = false;     // a named pool's map() chunk
  if (named()) {
    PoolTasks::Entry entry{};
    task_name = pool_tasks().name_of(fn, entry);
    chunk = invoke != entry.invoke && invoke == entry.chunk;
    if (task_name.empty())
      throw InvalidArgument(*name_, "ipckit: pool '" + *name_ +
                                        "' is served by other programs, which know tasks by name: register the "
                                        "function with IPCKIT_TASK (pool_tasks.hpp), in the worker program and here");
  }
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
  slot.runner.store(0, std::memory_order_relaxed);
  slot.state.store(slot_word(SlotKind::Queued, 0, st->gen), std::memory_order_release);
  try {
    const std::size_t size = sizeof(TaskHeader) + task_name.size() + args.size();
    ByteLoan loan = deadline.is_never() ? tasks_.loan(size) : tasks_.loan_until(size, deadline.when());
    TaskHeader h{index, st->gen, channel_, static_cast<std::uint32_t>(task_name.size()), 0, 0};
    if (!named()) {
      h.invoke = reinterpret_cast<std::uint64_t>(invoke);
      h.fn = fn;
    } else if (chunk) {
      h.invoke = kNamedChunkTask;
    }
    std::memcpy(loan.data(), &h, sizeof h);
    if (!task_name.empty()) std::memcpy(loan.data() + sizeof h, task_name.data(), task_name.size());
    if (!args.empty()) std::memcpy(loan.data() + sizeof h + task_name.size(), args.data(), args.size());
    if (retries_ != 0) {
      // The collector reads it (settle_dead_run) once a worker running it dies: written under m_ as read.
      std::lock_guard lock(m_);
      st->record.assign(loan.data(), size);
    }
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
        std::string message = "ipckit: " + label;
        message += ": its result of " + body + " bytes exceeds the pool's max_message of " +
                   std::to_string(max_message_) + " bytes; return less, or make the pool with a larger max_message";
        s.error = std::make_exception_ptr(MessageTooLarge(label, message));
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

void PoolCore::wake_collector() noexcept { publish_change(chan_->collector_seq, chan_->collector_sleepers, 1); }

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
  if (!named()) tasks_.close();                                              // workers drain what is queued, then end
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
  if (named()) {
    // Its tasks are done: the channel is free for the next client.
    std::uint64_t me = owner_;
    (void)chan_->owner.compare_exchange_strong(me, 0);
    return;
  }
  std::lock_guard lock(m_);
  for (Process& p : procs_)
    if (p.pid() != 0) p.join();
}

// ---------------------------------------------------------------- looking

std::vector<pid_t> PoolCore::worker_pids() const {
  std::vector<pid_t> out;
  if (named()) {
    for (const PoolWorkerStats& w : stats().per_worker) out.push_back(w.pid);
    return out;
  }
  std::lock_guard lock(m_);
  for (const Process& p : procs_)
    if (p.is_alive()) out.push_back(p.pid());
  return out;
}

unsigned PoolCore::workers() const noexcept {
  if (!named()) return count_;
  unsigned n = 0;
  for (unsigned w = 0; w < shm_.workers; ++w) n += owner_alive(worker_records_[w].owner.load()) ? 1 : 0;
  return n;
}

// A named pool's from any client: its serving workers, and the tasks of every client.
PoolStats PoolCore::stats() const {
  PoolStats out;
  out.restarts = counters_->restarts.load();
  out.submitted = counters_->submitted.load();
  out.succeeded = counters_->succeeded.load();
  out.failed = counters_->failed.load();
  out.timed_out = counters_->timed_out.load();
  out.cancelled = counters_->cancelled.load();
  const unsigned records = named() ? shm_.workers : count_;
  std::vector<std::size_t> at(records, SIZE_MAX);  // record -> place in per_worker
  for (unsigned w = 0; w < records; ++w) {
    pid_t pid = worker_records_[w].pid.load();
    if (named()) {
      const std::uint64_t owner = worker_records_[w].owner.load();
      if (!owner_alive(owner)) continue;
      pid = owner_pid(owner);
    }
    at[w] = out.per_worker.size();
    out.per_worker.push_back({.index = w, .pid = pid, .tasks_done = worker_records_[w].tasks.load()});
  }
  const std::uint64_t now = monotonic_ns();
  for (std::uint32_t i = 0; i < shm_.all_slots(); ++i) {
    const PoolSlot& slot = shm_.slots[i];
    const std::uint32_t word = slot.state.load(std::memory_order_acquire);
    if (slot_kind(word) == SlotKind::Queued) ++out.pending;
    if (slot_kind(word) != SlotKind::Running) continue;
    ++out.running;
    const unsigned w = slot_worker(word);
    if (w >= records || at[w] == SIZE_MAX) continue;
    PoolWorkerStats& ws = out.per_worker[at[w]];
    ws.task = slot.task.load();
    const std::uint64_t started = slot.started_ns.load();
    if (started != 0 && started <= now) ws.running_for = std::chrono::nanoseconds(now - started);
  }
  if (named()) {
    out.workers = out.workers_alive = static_cast<unsigned>(out.per_worker.size());
    return out;
  }
  out.workers = count_;
  std::lock_guard lock(m_);
  for (const Process& p : procs_) out.workers_alive += p.is_alive() ? 1 : 0;
  return out;
}

}  // namespace detail

ProcessPool::ProcessPool(const PoolOptions& options)
    : core_(std::make_unique<detail::PoolCore>(detail::fork_setup(options, detail::pool_serial()))) {}
ProcessPool::ProcessPool(std::unique_ptr<detail::PoolEngine> core) : core_(std::move(core)) {}
ProcessPool detail::PoolAccess::make(std::unique_ptr<PoolEngine> engine) { return ProcessPool(std::move(engine)); }
ProcessPool::~ProcessPool() = default;
ProcessPool::ProcessPool(ProcessPool&&) noexcept = default;
ProcessPool& ProcessPool::operator=(ProcessPool&&) noexcept = default;

ProcessPool ProcessPool::connect(const std::string& name, const NamedPoolOptions& options) {
  detail::PoolSetup s;
  s.name = name;
  s.timeout = options.task_timeout;
  s.retries = options.retries;
  s.owner = detail::owner_word_of_self();
  s.shm = detail::open_named_pool(name, options);
  s.channel = detail::claim_channel(*s.shm, name, s.owner);
  const Segment keep = s.shm->seg;  // the channel's record stays mapped if the client fails to start
  std::atomic<std::uint64_t>& channel = s.shm->channel_records[s.channel].owner;
  std::uint64_t me = s.owner;
  try {
    return ProcessPool(std::make_unique<detail::PoolCore>(std::move(s)));
  } catch (...) {
    (void)channel.compare_exchange_strong(me, 0);
    throw;
  }
}

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
