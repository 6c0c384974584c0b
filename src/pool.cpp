// pool.cpp — ProcessPool: forked workers fed through a ByteQueue, a collector
// thread that completes futures and replaces dead workers (see pool.hpp).
#include "ipckit/pool.hpp"

#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <csignal>
#include <cstring>
#include <future>
#include <thread>
#include <unordered_map>

#include "ipckit/current_process.hpp"
#include "ipckit/detail/futex.hpp"
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
  std::uint64_t id;
  std::uint64_t invoke;  // InvokeFn
  std::uint64_t fn;
};
// A result as it travels back: this header, then the encoded result or, for
// an error, "<type name>\0<what()>".
struct ResultHeader {
  std::uint64_t id;
  std::uint32_t failed;  // kResultOk, kResultThrew, kResultTooLarge
  std::uint32_t unused;
};
constexpr std::uint32_t kResultOk = 0;
constexpr std::uint32_t kResultThrew = 1;     // body: "<type>\0<what>"
constexpr std::uint32_t kResultTooLarge = 2;  // body: the result's size

// How long the collector waits for a result before it looks at the workers
// (how soon a dead worker's task fails; a tick costs about 60 µs of CPU).
constexpr auto kCollectorTick = std::chrono::milliseconds(100);

std::string demangled(const char* mangled) {
  int status = 0;
  char* name = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && name != nullptr ? name : mangled;
  std::free(name);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle's buffer
  return out;
}

// "<type>\0<what>" of the exception being handled.
std::string describe_current_exception() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  std::string out = type != nullptr ? demangled(type->name()) : "unknown";
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

std::string describe_end(const std::optional<int>& code) {
  if (!code) return "ended";
  if (*code < 0) {
    const char* abbrev = sigabbrev_np(-*code);
    return "was killed by signal " + std::to_string(-*code) +
           (abbrev != nullptr ? " (SIG" + std::string(abbrev) + ")" : "");
  }
  return "exited with code " + std::to_string(*code);
}

std::atomic<unsigned> g_pools{0};

}  // namespace

// A result usually comes within microseconds: poll briefly (futex.hpp's
// spin) before sleeping on the condition variable, whose wake-up costs tens
// of microseconds on a VM.
bool FutureState::wait_by(Deadline deadline) {
  const auto is_done = [&] { return done.load(std::memory_order_acquire); };
  if (is_done()) return true;
  if (deadline.passed()) return false;
  if (spin_until(is_done)) return true;
  std::unique_lock lock(m);
  if (deadline.is_never()) {
    cv.wait(lock, is_done);
    return true;
  }
  return cv.wait_until(lock, deadline.when(), is_done);
}

void throw_bad_arguments(std::size_t left) {
  throw std::runtime_error("the task's arguments do not decode (" + std::to_string(left) +
                           " bytes where the next one or its length should end)");
}

void raise_invalid_future() {
  throw InvalidArgument("", "ipckit: this Future has no task (default-made); take one from ProcessPool::submit()");
}

class PoolCore {
 public:
  explicit PoolCore(PoolOptions options);
  PoolCore(PoolOptions options, const std::string& serial);
  ~PoolCore() { shutdown(true, false); }
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  std::shared_ptr<FutureState> submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args);
  void shutdown(bool wait, bool cancel_futures);

  [[nodiscard]] unsigned workers() const noexcept { return count_; }
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  [[nodiscard]] std::uint64_t restarts() const noexcept { return restarts_.load(); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::atomic_ref<std::uint64_t> current(unsigned w) { return std::atomic_ref<std::uint64_t>(current_[w]); }
  void start_workers();
  void start_worker(unsigned w);
  [[noreturn]] void work(unsigned w);
  void collect();
  bool take_result(Deadline deadline);
  void resolve(std::uint64_t id, const std::function<void(FutureState&)>& how);
  void check_workers();
  void cancel_queued();
  [[nodiscard]] bool claimed(std::uint64_t id) noexcept;

  std::string name_;
  unsigned count_;
  std::size_t max_message_;
  std::size_t results_max_;  // the results queue's max_message
  Segment seg_;
  ByteQueue tasks_;
  ByteQueue results_;
  RawArray<std::uint64_t> current_;  // per worker: the id of the task it runs, 0 if none

  mutable std::mutex m_;  // guards everything below
  std::vector<Process> procs_;
  std::vector<bool> retired_;  // ended and not replaced (the queue was closed)
  std::unordered_map<std::uint64_t, std::shared_ptr<FutureState>> pending_;
  std::uint64_t next_id_ = 0;
  bool closed_ = false;
  bool stopping_ = false;  // the collector ends once nothing is pending
  std::condition_variable drained_;

  std::atomic<std::uint64_t> restarts_{0};
  std::thread collector_;
};

namespace {

// This process's pools, numbered: names the segment and an unnamed pool.
std::string pool_serial() { return std::to_string(::getpid()) + "-" + std::to_string(g_pools.fetch_add(1)); }

std::size_t ring_bytes(std::size_t max_message) {
  const std::size_t want = std::max<std::size_t>(std::size_t{1} << 20, 4 * (max_message + 64));
  return std::min<std::size_t>(std::bit_ceil(want), std::size_t{1} << 27);
}

}  // namespace

PoolCore::PoolCore(PoolOptions options) : PoolCore(std::move(options), pool_serial()) {}

PoolCore::PoolCore(PoolOptions options, const std::string& serial)
    : name_(options.name.empty() ? "pool-" + serial : options.name),
      count_(options.workers != 0 ? options.workers : cpu_count()),
      max_message_(options.max_message),
      results_max_(options.max_message + sizeof(ResultHeader)),
      seg_([&] {
        if (options.max_pending == 0)
          throw InvalidArgument(name_, "ipckit: pool '" + name_ + "': max_pending 0 would take no task; use 1 or more");
        const std::string seg = "ipckit.pool." + serial;
        const std::size_t ring = ring_bytes(options.max_message + sizeof(TaskHeader));
        Segment s =
            Segment::create(seg, 2 * ring + sizeof(std::uint64_t) * std::size_t{count_} + (std::size_t{1} << 16));
        Segment::remove(seg);  // the workers are forked: they have the mapping, nobody needs the name
        return s;
      }()),
      tasks_(seg_.byte_queue("tasks", {.capacity_bytes = ring_bytes(options.max_message + sizeof(TaskHeader)),
                                       .max_items = options.max_pending,
                                       .max_message = options.max_message + sizeof(TaskHeader)})),
      results_(seg_.byte_queue("results", {.capacity_bytes = ring_bytes(options.max_message + sizeof(ResultHeader)),
                                           .max_message = options.max_message + sizeof(ResultHeader)})),
      current_(seg_.raw_array<std::uint64_t>("current", count_)) {
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

void PoolCore::start_workers() {
  std::lock_guard lock(m_);
  procs_.reserve(count_);
  retired_.assign(count_, false);
  try {
    for (unsigned w = 0; w < count_; ++w) {
      procs_.emplace_back([] {});
      start_worker(w);
    }
  } catch (...) {  // a fork failed: the workers started end once they see the queue closed
    tasks_.close();
    for (Process& p : procs_)
      if (p.pid() != 0) p.join();
    throw;
  }
}

void PoolCore::start_worker(unsigned w) {
  current(w).store(0);
  procs_[w] = Process([this, w] { work(w); }, {.name = name_ + "-worker-" + std::to_string(w), .daemon = true});
  procs_[w].start();
}

// In the worker: take a task through a view, claim it in the table before
// letting the queue go, run it, send the result back.
void PoolCore::work(unsigned w) {
  set_pool_worker(true);  // current_process().pool_worker
  std::string args;
  std::string out;
  std::string reply;
  for (;;) {
    TaskHeader h{};
    try {
      ByteView view = tasks_.get_view();
      if (view.size() < sizeof h) continue;  // not a task: dropped as the view is released
      std::memcpy(&h, view.data(), sizeof h);
      if (claimed(h.id)) continue;  // a dead worker's claim, delivered again: the collector fails it
      current(w).store(h.id);
      args.assign(view.data() + sizeof h, view.size() - sizeof h);
    } catch (const Closed&) {
      std::_Exit(0);
    }
    ResultHeader r{h.id, kResultOk, 0};
    try {
      // The forked worker runs the pool's own code: the submitter's function addresses are its own.
      reinterpret_cast<InvokeFn>(h.invoke)(h.fn, args.data(), args.size(), out);  // NOLINT(performance-no-int-to-ptr)
    } catch (...) {
      r.failed = kResultThrew;
      out = describe_current_exception();
    }
    reply.assign(reinterpret_cast<const char*>(&r), sizeof r);
    reply += out;
    if (reply.size() > results_max_) {
      r.failed = kResultTooLarge;
      reply.assign(reinterpret_cast<const char*>(&r), sizeof r);
      reply += std::to_string(out.size());
    }
    results_.put(reply);
    current(w).store(0);
  }
}

bool PoolCore::claimed(std::uint64_t id) noexcept {
  for (unsigned w = 0; w < count_; ++w)
    if (current(w).load() == id) return true;
  return false;
}

std::shared_ptr<FutureState> PoolCore::submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args) {
  auto state = std::make_shared<FutureState>();
  std::uint64_t id = 0;
  {
    std::lock_guard lock(m_);
    if (closed_) throw Closed(name_, "ipckit: pool '" + name_ + "' is shut down; submit to a pool that runs");
    id = ++next_id_;
    state->label = "task " + std::to_string(id) + " of pool '" + name_ + "'";
    pending_.emplace(id, state);
  }
  try {
    ByteLoan loan = tasks_.loan(sizeof(TaskHeader) + args.size());
    const TaskHeader h{id, reinterpret_cast<std::uint64_t>(invoke), fn};
    std::memcpy(loan.data(), &h, sizeof h);
    if (!args.empty()) std::memcpy(loan.data() + sizeof h, args.data(), args.size());
    loan.publish();
  } catch (...) {
    std::lock_guard lock(m_);
    pending_.erase(id);
    throw;
  }
  return state;
}

void PoolCore::resolve(std::uint64_t id, const std::function<void(FutureState&)>& how) {
  std::shared_ptr<FutureState> s;
  {
    std::lock_guard lock(m_);
    const auto it = pending_.find(id);
    if (it == pending_.end()) return;  // resolved already: each future once
    s = std::move(it->second);
    pending_.erase(it);
    if (pending_.empty()) drained_.notify_all();
  }
  std::vector<std::function<void()>> listeners;
  {
    std::lock_guard lock(s->m);
    how(*s);
    s->done.store(true, std::memory_order_release);
    listeners.swap(s->listeners);
  }
  s->cv.notify_all();
  // Outside the lock: a listener may look at the future (a callback's get()).
  for (auto& fn : listeners) {
    try {
      fn();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a listener must not end the collector thread
    }
  }
}

// One result, if one comes by the deadline.
bool PoolCore::take_result(Deadline deadline) {
  std::optional<ByteView> view;
  try {
    view = deadline.is_never() ? results_.get_view() : results_.get_view_until(deadline.when());
  } catch (const Empty&) {
    return false;
  }
  ResultHeader r{};
  if (view->size() < sizeof r) return true;  // not a result: dropped
  std::memcpy(&r, view->data(), sizeof r);
  const std::string_view body(view->data() + sizeof r, view->size() - sizeof r);
  resolve(r.id, [&](FutureState& s) {
    if (r.failed == kResultOk) {
      s.result.assign(body);
      return;
    }
    if (r.failed == kResultTooLarge) {
      s.error = std::make_exception_ptr(
          MessageTooLarge(s.label, "ipckit: " + s.label + ": its result of " + std::string(body) +
                                       " bytes exceeds the pool's max_message of " + std::to_string(max_message_) +
                                       " bytes; return less, or make the pool with a larger max_message"));
      return;
    }
    const std::size_t nul = body.find('\0');
    std::string type(body.substr(0, nul));
    std::string what(nul == std::string_view::npos ? std::string_view() : body.substr(nul + 1));
    s.error =
        std::make_exception_ptr(TaskError(s.label, "ipckit: " + s.label + " threw " + type + ": " + what, type, what));
  });
  return true;
}

// A dead worker: its results first (a result sent before it died wins),
// then its task fails, then a new worker takes its place.
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
    while (take_result(Deadline::now())) {
    }
    // A worker ends by itself only on the closed, drained queue; one that
    // died is replaced, unless the pool is closed and nothing is left to take.
    bool replace = false;
    {
      std::lock_guard lock(m_);
      replace = !closed_ || (code != 0 && tasks_.qsize() != 0);
    }
    const std::uint64_t id = current(w).load();
    if (id != 0)
      resolve(id, [&](FutureState& s) {
        s.error = std::make_exception_ptr(WorkerDied(s.label, "ipckit: " + s.label + " failed: its worker, pid " +
                                                                  std::to_string(pid) + ", " + describe_end(code) +
                                                                  " while running it" +
                                                                  (replace ? " (the pool started a new worker)" : "")));
      });
    current(w).store(0);
    std::lock_guard lock(m_);
    procs_[w].join();
    if (!replace) {
      retired_[w] = true;
      continue;
    }
    start_worker(w);
    restarts_.fetch_add(1);
  }
}

void PoolCore::collect() {
  for (;;) {
    {
      std::lock_guard lock(m_);
      if (stopping_ && pending_.empty()) return;
    }
    (void)take_result(Deadline::after(kCollectorTick));
    // A burst of results: take what is there before looking at the workers.
    for (int i = 0; i < 256 && take_result(Deadline::now()); ++i) {
    }
    check_workers();
  }
}

// Cancels the tasks no worker has taken: takes them off the queue itself.
// (A task submitted meanwhile, or one a stopped worker keeps the queue from,
// may still run: as Python's cancel_futures, this is best effort.)
void PoolCore::cancel_queued() {
  while (std::optional<ByteView> view = tasks_.try_get_view()) {
    TaskHeader h{};
    if (view->size() < sizeof h) continue;
    std::memcpy(&h, view->data(), sizeof h);
    resolve(h.id, [&](FutureState& s) {
      s.error = std::make_exception_ptr(
          Closed(s.label, "ipckit: " + s.label +
                              " was cancelled: the pool was shut down with cancel_futures before a "
                              "worker took it"));
    });
  }
}

void PoolCore::shutdown(bool wait, bool cancel_futures) {
  {
    std::lock_guard lock(m_);
    closed_ = true;
  }
  if (cancel_futures) cancel_queued();
  tasks_.close();  // workers drain what is queued, then end
  if (!wait) return;
  {
    std::unique_lock lock(m_);
    stopping_ = true;
    drained_.wait(lock, [&] { return pending_.empty(); });
  }
  if (collector_.joinable()) collector_.join();
  std::lock_guard lock(m_);
  for (Process& p : procs_)
    if (p.pid() != 0) p.join();
}

std::vector<pid_t> PoolCore::worker_pids() const {
  std::lock_guard lock(m_);
  std::vector<pid_t> out;
  for (const Process& p : procs_)
    if (p.is_alive()) out.push_back(p.pid());
  return out;
}

}  // namespace detail

ProcessPool::ProcessPool(PoolOptions options) : core_(std::make_unique<detail::PoolCore>(std::move(options))) {}
ProcessPool::~ProcessPool() = default;

std::shared_ptr<detail::FutureState> ProcessPool::submit_bytes(std::uintptr_t fn, detail::InvokeFn invoke,
                                                               std::string_view args) {
  return core_->submit(fn, invoke, args);
}
void ProcessPool::shutdown(bool wait, bool cancel_futures) { core_->shutdown(wait, cancel_futures); }
unsigned ProcessPool::workers() const noexcept { return core_->workers(); }
std::vector<pid_t> ProcessPool::worker_pids() const { return core_->worker_pids(); }
std::uint64_t ProcessPool::restarts() const noexcept { return core_->restarts(); }
const std::string& ProcessPool::name() const noexcept { return core_->name(); }

}  // namespace ipckit
