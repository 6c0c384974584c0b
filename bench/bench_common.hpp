// bench/bench_common.hpp — helpers shared by ipckit's multi-process benchmarks.
//
// Clocks, anonymous shared memory that survives fork, pinning, waiting for a
// quiet machine, forked children watched through pidfds (a deadline instead
// of a hang), and median/quantile summaries. Header-only; everything is in
// namespace `bench`.
#pragma once

#include <linux/perf_event.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

#if defined(__x86_64__) || defined(__i386__)
inline void cpu_relax() { __builtin_ia32_pause(); }
#elif defined(__aarch64__)
inline void cpu_relax() { asm volatile("yield"); }
#else
inline void cpu_relax() {}
#endif

inline std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// CPU time of the whole calling process.
inline std::int64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline void sleep_ms(int ms) {
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1'000'000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// An anonymous shared mapping that outlives fork (children see the same pages).
class SharedBytes {
 public:
  explicit SharedBytes(std::size_t bytes) : bytes_(std::max<std::size_t>(bytes, 1)) {
    p_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p_ == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
  }
  ~SharedBytes() { munmap(p_, bytes_); }
  SharedBytes(const SharedBytes&) = delete;
  SharedBytes& operator=(const SharedBytes&) = delete;
  [[nodiscard]] void* get() const { return p_; }
  [[nodiscard]] std::size_t size() const { return bytes_; }

 private:
  std::size_t bytes_;
  void* p_;
};

// One T constructed in anonymous shared memory.
template <class T>
class SharedBlock {
 public:
  SharedBlock() : mem_(sizeof(T)) { p_ = new (mem_.get()) T(); }
  ~SharedBlock() { p_->~T(); }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  T* get() const { return p_; }

 private:
  SharedBytes mem_;
  T* p_;
};

// ---------------------------------------------------------------------------
// CPUs.

// The first `want` CPUs this process may run on (fewer if there are fewer).
inline std::vector<int> allowed_cpus(int want) {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE && static_cast<int>(out.size()) < want; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

inline void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    throw std::runtime_error(std::string("sched_setaffinity: ") + std::strerror(errno));
}

// Busy fraction of all CPUs over `window_ms`, from /proc/stat (steal counts as busy).
inline double busy_fraction(int window_ms) {
  auto sample = [](std::uint64_t& busy, std::uint64_t& total) {
    std::ifstream f("/proc/stat");
    std::string cpu;
    std::uint64_t v[8] = {};
    f >> cpu;
    for (auto& x : v) f >> x;
    total = 0;
    for (auto x : v) total += x;
    busy = total - v[3] - v[4];  // minus idle and iowait
    return cpu == "cpu";
  };
  std::uint64_t b0 = 0, t0 = 0, b1 = 0, t1 = 0;
  if (!sample(b0, t0)) return 0;
  usleep(static_cast<useconds_t>(window_ms) * 1000);
  if (!sample(b1, t1) || t1 <= t0) return 0;
  return static_cast<double>(b1 - b0) / static_cast<double>(t1 - t0);
}

// Waits (bounded by `max_wait_ms`) until other programs leave the CPUs idle,
// so that a run measures the benchmark rather than the scheduler sharing a
// CPU with somebody's compiler. Returns false if they never did.
inline bool wait_for_quiet(int max_wait_ms) {
  if (max_wait_ms <= 0) return true;
  const std::int64_t give_up = now_ns() + std::int64_t{max_wait_ms} * 1'000'000;
  do {
    if (busy_fraction(20) < 0.10) return true;
  } while (now_ns() < give_up);
  return false;
}

// ---------------------------------------------------------------------------
// Children.

// Forked children watched through pidfds, so that the parent sleeps in one
// poll() (no periodic wake-ups on a 2-CPU machine) and still has a deadline.
class Children {
 public:
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { kill_all(); }

  // Forks `body` (which should end with _exit; returning exits with 0).
  void spawn(const std::function<void()>& body) {
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      body();
      _exit(0);
    }
    int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    kids_.push_back({pid, fd, false, 0});
  }

  // Any child already gone (while the parent waits for a start line)?
  bool any_exited() {
    for (auto& k : kids_) {
      if (k.reaped) continue;
      int status = 0;
      if (waitpid(k.pid, &status, WNOHANG) == k.pid) {
        k.reaped = true;
        k.status = status;
        return true;
      }
    }
    return false;
  }

  // Waits for every child until `deadline_ns`; true if all exited with 0.
  // On the deadline returns false with `timed_out` set (children still run).
  bool wait_all(std::int64_t deadline_ns, bool* timed_out) {
    *timed_out = false;
    for (;;) {
      std::vector<pollfd> fds;
      for (auto& k : kids_) {
        if (k.reaped) continue;
        if (k.fd < 0) {  // no pidfd (old kernel): plain blocking waitpid
          while (waitpid(k.pid, &k.status, 0) < 0 && errno == EINTR) {
          }
          k.reaped = true;
          continue;
        }
        fds.push_back({k.fd, POLLIN, 0});
      }
      if (fds.empty()) break;
      const std::int64_t left_ms = (deadline_ns - now_ns()) / 1'000'000;
      if (left_ms <= 0) {
        *timed_out = true;
        return false;
      }
      int rc = poll(fds.data(), fds.size(), static_cast<int>(std::min<std::int64_t>(left_ms, INT_MAX)));
      if (rc < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      for (auto& k : kids_) {
        if (k.reaped) continue;
        int status = 0;
        if (waitpid(k.pid, &status, WNOHANG) == k.pid) {
          k.reaped = true;
          k.status = status;
        }
      }
    }
    bool ok = true;
    for (auto& k : kids_) ok = ok && WIFEXITED(k.status) && WEXITSTATUS(k.status) == 0;
    return ok;
  }

  void kill_all() {
    for (auto& k : kids_) {
      if (!k.reaped) {
        kill(k.pid, SIGKILL);
        while (waitpid(k.pid, &k.status, 0) < 0 && errno == EINTR) {
        }
        k.reaped = true;
      }
      if (k.fd >= 0) close(k.fd);
      k.fd = -1;
    }
  }

 private:
  struct Kid {
    pid_t pid;
    int fd;
    bool reaped;
    int status;
  };
  std::vector<Kid> kids_;
};

// ---------------------------------------------------------------------------
// Summaries.

struct Stats {
  double median = 0, min = 0, max = 0;
};

inline Stats summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const std::size_t k = v.size();
  s.median = (k % 2) ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

// Linear interpolation between the closest ranks of a sorted vector.
inline double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

inline std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

// Counts futex system calls through the syscalls:sys_enter_futex tracepoint
// (needs root and tracefs mounted; optional).
class FutexCounter {
 public:
  static std::optional<int> tracepoint_id() {
    for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
      std::ifstream f(std::string(dir) + "/events/syscalls/sys_enter_futex/id");
      int id = 0;
      if (f >> id) return id;
    }
    return std::nullopt;
  }
  // Counts this process and the children it forks after construction.
  explicit FutexCounter(int id) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = static_cast<std::uint64_t>(id);
    attr.disabled = 1;
    attr.inherit = 1;
    fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  ~FutexCounter() {
    if (fd_ >= 0) close(fd_);
  }
  FutexCounter(const FutexCounter&) = delete;
  FutexCounter& operator=(const FutexCounter&) = delete;
  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  void enable() {
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
  }
  void disable() {
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
  }
  [[nodiscard]] std::int64_t read_count() const {
    std::uint64_t v = 0;
    if (fd_ < 0 || ::read(fd_, &v, sizeof(v)) != sizeof(v)) return -1;
    return static_cast<std::int64_t>(v);
  }

 private:
  int fd_ = -1;
};

}  // namespace bench
