// tests/multiprocess.hpp — run test code in real child processes.
//
// `Child` forks, runs a function in the child and turns its outcome into an
// exit code (0 = returned, 1 = threw or an EXPECT failed, 2 = gtest fatal
// failure); `wait_exit()` waits with a deadline and SIGKILLs a child that
// overran it, so a hung child fails the test instead of hanging it.
// `unique_name()` embeds the pid so parallel ctest runs never collide;
// `ScopedSegmentName` removes the segment before and after the test.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
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
        if (::testing::Test::HasFatalFailure()) code = 2;
        else if (::testing::Test::HasFailure()) code = 1;
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

}  // namespace ipckit::testing
