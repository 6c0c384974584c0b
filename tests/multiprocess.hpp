// tests/multiprocess.hpp — run test code in real child processes.
//
// `Child` forks, runs a function in the child and turns its outcome into an
// exit code (0 = returned, 1 = threw or an EXPECT failed, 2 = gtest fatal
// failure); `wait_exit()` waits with a deadline and SIGKILLs a child that
// overran it, so a hung child fails the test instead of hanging it.
// `unique_name()` embeds the pid so parallel ctest runs never collide;
// `ScopedSegmentName` removes the segment before and after the test.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "ipckit/segment.hpp"

namespace ipckit::testing {

inline std::string unique_name(const std::string& stem) {
  static std::atomic<int> n{0};
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(n++) + "_" + stem;
}

struct ScopedSegmentName {
  explicit ScopedSegmentName(const std::string& stem) : name(unique_name(stem)) { Segment::remove(name); }
  ~ScopedSegmentName() { Segment::remove(name); }
  ScopedSegmentName(const ScopedSegmentName&) = delete;
  ScopedSegmentName& operator=(const ScopedSegmentName&) = delete;
  std::string name;
};

class Child {
 public:
  explicit Child(const std::function<void()>& body) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int code = 0;
      try {
        body();
        if (::testing::Test::HasFatalFailure())
          code = 2;
        else if (::testing::Test::HasFailure())
          code = 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d threw: %s\n", ::getpid(), e.what());
        code = 1;
      } catch (...) {
        code = 1;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }
  ~Child() {
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  void kill(int sig = SIGKILL) const { ::kill(pid_, sig); }

  // Raw wait status, or -1 if the child overran `deadline` (it is then killed).
  int wait(std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    if (status_ >= 0) return status_;
    auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) return status_ = st;
      if (std::chrono::steady_clock::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        status_ = st;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // Exit code (negative signal number if killed), -1000 on overrun.
  int wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    int st = wait(deadline);
    if (st < 0) return -1000;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return -999;
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A one-byte pipe signal between processes, with a deadline. Several
// processes may post to (or wait on) the same one: each byte is one event.
struct Signal {
  int fd[2];
  Signal() { EXPECT_EQ(::pipe(fd), 0); }
  ~Signal() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  void post(int n = 1) const {
    for (int i = 0; i < n; ++i) (void)!::write(fd[1], "x", 1);
  }
  bool wait(std::chrono::milliseconds deadline = 10s) const {
    pollfd p{fd[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(deadline.count())) != 1) return false;
    char c;
    return ::read(fd[0], &c, 1) == 1;
  }
  // Waits for `n` posts, all within `deadline`.
  bool wait_n(int n, std::chrono::milliseconds deadline = 10s) const {
    const auto end = Clock::now() + deadline;
    for (int i = 0; i < n; ++i) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left <= 0ms || !wait(left)) return false;
    }
    return true;
  }
};

// Polls `pred` every millisecond until it holds or `deadline` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds deadline = 10s) {
  const auto end = Clock::now() + deadline;
  while (!pred()) {
    if (Clock::now() >= end) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Whether thread `tid` of process `pid` is blocked in a futex system call,
// i.e. a waiter got past its spinning and really sleeps in the kernel. Where
// /proc/<pid>/syscall cannot be read (ptrace restrictions), any interruptible
// sleep counts.
inline bool sleeps_in_futex(pid_t pid, pid_t tid) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  std::ifstream f(task + "/syscall");
  std::string first;
  if (f >> first) {
    if (first == "running") return false;
    const long nr = std::strtol(first.c_str(), nullptr, 10);
#ifdef SYS_futex_waitv
    if (nr == SYS_futex_waitv) return true;
#endif
    return nr == SYS_futex;
  }
  std::ifstream stat(task + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}

// Whether every thread of process `pid` is blocked in a futex (a child whose
// threads wait, and whose main thread joins them, which is a futex too).
inline bool all_threads_sleep_in_futex(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  int threads = 0;
  bool all = true;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++threads;
    all = all && sleeps_in_futex(pid, static_cast<pid_t>(std::stol(e->d_name)));
  }
  ::closedir(d);
  return threads > 0 && all;
}

inline bool asleep(const Child& c) {
  return eventually([&] { return all_threads_sleep_in_futex(c.pid()); });
}

// Whether the (single-threaded) child sleeps in some system call — a
// network wait, a nap — in three looks 10 ms apart: a caller blocked on a
// server, not one between two calls.
inline bool asleep_in_any_call(const Child& c) {
  const auto sleeping = [&] {
    std::ifstream f("/proc/" + std::to_string(c.pid()) + "/syscall");
    std::string first;
    return (f >> first) && first != "running";
  };
  return eventually([&] {
    for (int look = 0; look < 3; ++look) {
      if (!sleeping()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  });
}

// Cross-process atomic access to an element of a shared Array or Value.
template <class T>
std::atomic_ref<T> at(T& x) {
  return std::atomic_ref<T>(x);
}

// Steady-clock time in ns: CLOCK_MONOTONIC, the same in every process.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Waiters re-check their word about once a second even if nobody wakes them,
// which heals a lost wake-up and hides it from item counts. A hand-over slower
// than this is taken for one.
inline constexpr auto kStallLimit = 600ms;

}  // namespace ipckit::testing
