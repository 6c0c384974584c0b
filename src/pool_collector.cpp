// pool_collector.cpp — the pool's collector thread: it sleeps on its
// channel's word, takes results nobody waits for, finds dead workers
// (replacing them, failing or re-queueing the task each ran) and kills
// workers whose task ran past task_timeout.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/pool_state.hpp"
#include "ipckit/pool.hpp"
#include "ipckit/process.hpp"
#include "pool_core.hpp"

namespace ipckit::detail {

namespace {

// How often the collector looks at the workers when nothing wakes it (how
// soon a dead worker's task fails; a look costs about 60 µs of CPU).
constexpr auto kCollectorTick = std::chrono::milliseconds(100);

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

}  // namespace

void PoolCore::collect() {
  PoolChannel& c = *chan_;
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
    if (named())
      check_runners();
    else
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
  fail_queued([&](const std::string& label) {
    return std::make_exception_ptr(
        WorkerDied(label, "ipckit: " + label + " failed: pool '" + *name_ +
                              "' has no worker left: a replacement worker's initializer failed: " + init_failure_ +
                              ". Fix the initializer (PoolOptions::initializer) and make a new pool"));
  });
  while (tasks_.try_get_view()) {  // their records: nobody would take them
  }
}

void PoolCore::fail_queued(const std::function<std::exception_ptr(const std::string& label)>& error) {
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) != SlotKind::Queued ||
        !slots_[i].state.compare_exchange_strong(word, slot_word(SlotKind::Finishing, 0, slot_gen(word))))
      continue;
    counters_->failed.fetch_add(1);
    complete(i, slot_gen(word), [&](FutureState& s) { s.error = error(s.label()); });
  }
}

void PoolCore::settle_dead_worker(unsigned w, pid_t pid, const std::optional<int>& code, bool replaced) {
  const std::string how_died = describe_exit(code);
  const std::string tail = replaced ? " (the pool started a new worker)" : "";
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    const std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) == SlotKind::Running && slot_worker(word) == w) settle_dead_run(i, word, pid, how_died, tail);
  }
}

// A named pool's workers are other programs: a task's runner is dead when
// the process recorded in its slot is (a worker killed between its claim
// and that record is recorded by the worker that takes over its index).
void PoolCore::check_runners() {
  for (std::uint32_t i = 0; i < nslots_; ++i) {
    std::uint32_t word = slots_[i].state.load(std::memory_order_acquire);
    if (slot_kind(word) != SlotKind::Running) continue;
    std::uint64_t runner = slots_[i].runner.load(std::memory_order_acquire);
    // Not recorded: it was killed between its claim and recording itself,
    // if the holder of its index is dead (a live holder is the claimer, about
    // to record itself, or a successor that records the dead one).
    if (runner == 0 && slot_worker(word) < shm_.workers)
      runner = worker_records_[slot_worker(word)].owner.load(std::memory_order_acquire);
    if (runner == 0 || owner_alive(runner)) continue;
    (void)harvest();  // a result it sent before it died wins
    if (slots_[i].state.load(std::memory_order_acquire) != word) continue;
    settle_dead_run(i, word, owner_pid(runner), "died", "");
  }
  // Closed (close_pool) with no worker left to drain it: nobody will take this client's queued tasks.
  if (tasks_.closed() && workers() == 0)
    fail_queued([&](const std::string& label) {
      return std::make_exception_ptr(Closed(label, "ipckit: " + label + " was not run: pool '" + *name_ +
                                                       "' was closed (close_pool) before a worker took it"));
    });
}

void PoolCore::settle_dead_run(std::uint32_t i, std::uint32_t word, pid_t pid, const std::string& how_died,
                               const std::string& tail) {
  PoolSlot& slot = slots_[i];
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
    slot.runner.store(0, std::memory_order_relaxed);  // the next run records its own
    if (!record.empty() && slot.state.compare_exchange_strong(word, slot_word(SlotKind::Queued, 0, gen))) {
      if (tasks_.try_put(record)) return;
      word = slot_word(SlotKind::Queued, 0, gen);  // no room: it fails below
    }
  }
  if (!slot.state.compare_exchange_strong(word, slot_word(SlotKind::Finishing, 0, gen))) return;
  if (timed_out) {
    counters_->timed_out.fetch_add(1);
    complete(i, gen, [&](FutureState& s) {
      const std::string label = s.label();
      s.error = std::make_exception_ptr(Timeout(label, "ipckit: " + label + " ran past the pool's task_timeout of " +
                                                           duration_text(timeout_) + ": its worker, pid " +
                                                           std::to_string(pid) + ", was killed" + tail));
    });
    return;
  }
  counters_->failed.fetch_add(1);
  complete(i, gen, [&](FutureState& s) {
    const std::string label = s.label();
    const unsigned runs = slot.attempts.load();
    s.error = std::make_exception_ptr(WorkerDied(
        label, "ipckit: " + label + " failed: its worker, pid " + std::to_string(pid) + ", " + how_died +
                   " while running it" + (runs > 1 ? " (run " + std::to_string(runs) + " times)" : "") + tail));
  });
}

pid_t PoolCore::runner_pid(std::uint32_t i, std::uint32_t word) const {
  if (named()) {
    const std::uint64_t runner = slots_[i].runner.load(std::memory_order_acquire);
    return runner != 0 && owner_alive(runner) ? owner_pid(runner) : 0;
  }
  std::lock_guard lock(m_);
  const unsigned w = slot_worker(word);
  return w < count_ && procs_[w].is_alive() ? procs_[w].pid() : 0;
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
    const pid_t pid = runner_pid(i, word);
    // Still running that task? (It may have finished since the look above.)
    if (pid == 0 || slots_[i].state.load(std::memory_order_acquire) != word) continue;
    timed_out_[i] = slot_gen(word) + 1;
    ::kill(pid, SIGKILL);
    next = 0;  // reap it at once
  }
  return std::chrono::nanoseconds(std::max<std::uint64_t>(next, 1'000'000));
}

}  // namespace ipckit::detail
