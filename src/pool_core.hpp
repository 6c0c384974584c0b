// src/pool_core.hpp — PoolCore, what a ProcessPool is inside: the submitting
// side (pool.cpp) and its collector thread (pool_collector.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/detail/pool_start.hpp"
#include "ipckit/detail/pool_state.hpp"
#include "ipckit/pool.hpp"
#include "ipckit/queue.hpp"
#include "pool_internal.hpp"

namespace ipckit::detail {

// How a PoolCore is made: a fork pool's (fork_setup) or a named pool's client's (ProcessPool::connect).
struct PoolSetup {
  std::string name;
  unsigned workers = 0;  // to fork; 0 for a named pool's client
  std::chrono::nanoseconds timeout{0};
  unsigned retries = 0;
  void (*initializer)() = nullptr;
  std::optional<PoolSegment> shm;  // always set
  std::uint32_t channel = 0;       // this client's
  std::uint64_t owner = 0;         // a named pool's client: owner_word_of_self(); 0 for a fork pool
};

class PoolCore final : public PoolEngine {
 public:
  explicit PoolCore(PoolSetup setup);
  ~PoolCore() override;
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Null when no slot came free by the deadline.
  std::shared_ptr<FutureState> submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args,
                                      Deadline deadline) override;
  void shutdown(bool wait, bool cancel_futures) override;

  // For FutureState (called with the state's mutex not held, inside enter()/leave()).
  bool await(FutureState& st, std::uint32_t index, std::uint32_t gen, Deadline deadline);
  bool cancel(std::uint32_t index, std::uint32_t gen);
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

  [[nodiscard]] unsigned workers() const noexcept override;
  [[nodiscard]] std::vector<pid_t> worker_pids() const override;
  [[nodiscard]] std::uint64_t restarts() const noexcept override { return counters_->restarts.load(); }
  [[nodiscard]] const std::string& name() const noexcept override { return *name_; }
  [[nodiscard]] PoolStats stats() const override;

 private:
  using How = std::function<void(FutureState&)>;
  [[nodiscard]] bool named() const noexcept { return owner_ != 0; }
  void start_workers();
  void start_worker(unsigned w);
  [[noreturn]] void work(unsigned w);
  void collect();
  // Takes every result there is; how many.
  std::size_t harvest();
  // Settles the task in slot `index` (generation `gen`) once: its future, then the slot.
  void complete(std::uint32_t index, std::uint32_t gen, const How& how);
  void check_workers();
  // Named pool: fails (or queues again) the tasks whose worker program died.
  void check_runners();
  void settle_dead_worker(unsigned w, pid_t pid, const std::optional<int>& code, bool replaced);
  // The task in slot i (state `word`, Running) lost its worker `pid`, which `how_died`.
  void settle_dead_run(std::uint32_t i, std::uint32_t word, pid_t pid, const std::string& how_died,
                       const std::string& tail);
  // The live worker process running the task in slot i (state `word`); 0 if none.
  pid_t runner_pid(std::uint32_t i, std::uint32_t word) const;
  // Kills the workers of tasks past the timeout; when the next one would be.
  std::chrono::nanoseconds enforce_timeouts();
  void cancel_queued();
  void fail_if_no_worker_left();
  // Fails every task of this client that no worker has taken, with error(label).
  void fail_queued(const std::function<std::exception_ptr(const std::string& label)>& error);
  void wake_collector() noexcept;
  [[noreturn]] void raise_closed() const;

  std::shared_ptr<const std::string> name_;
  unsigned count_;  // forked workers (0 for a named pool's client)
  std::uint32_t nslots_;
  std::size_t max_message_;
  std::chrono::nanoseconds timeout_;
  unsigned retries_;
  PoolSegment shm_;
  std::uint32_t channel_;
  std::uint64_t owner_;
  ByteQueue& tasks_;
  ByteQueue& results_;  // this client's channel's
  PoolSlot* slots_;     // this client's channel's
  PoolWorkerRecord* worker_records_;
  PoolCounters* counters_;
  PoolChannel* chan_;
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

}  // namespace ipckit::detail
