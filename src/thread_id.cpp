// Thread identity and liveness from /proc, for the locks' owner checks.
#include "ipckit/detail/thread_id.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ipckit::detail {
namespace {

struct StatFields {
  char state = 0;
  std::uint64_t start_ticks = 0;
};

// Reads /proc/<path>/stat; false if the thread or process does not exist.
// What reading /proc/<id>/stat found. Only a missing entry means the
// thread is gone: any other failure (no file descriptors left, a read error)
// says nothing, and judging a live holder dead would hand its lock or its
// units to someone else.
enum class StatRead { ok, gone, unknown };

StatRead read_stat(const char* path, StatFields& out) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH ? StatRead::gone : StatRead::unknown;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) return read_errno == ESRCH ? StatRead::gone : StatRead::unknown;  // exited after the open
  if (n == 0) return StatRead::gone;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: skip to the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return StatRead::unknown;
  ++p;
  // Fields 3.. follow, space-separated: state is field 3, starttime field 22.
  int field = 2;
  while (*p != '\0') {
    while (*p == ' ') ++p;
    ++field;
    if (field == 3) out.state = *p;
    if (field == 22) {
      out.start_ticks = std::strtoull(p, nullptr, 10);
      return StatRead::ok;
    }
    while (*p != '\0' && *p != ' ') ++p;
  }
  return StatRead::unknown;
}

// The process's identity; atomics because threads may fill it at once.
std::atomic<std::uint64_t> g_process_start{0};
std::atomic<std::uint32_t> g_process_id{0};

void forget_identity_in_child() noexcept {
  t_identity = ThreadIdentity{};
  g_process_id.store(0, std::memory_order_relaxed);
}

std::once_flag g_fork_handler_once;
void install_fork_handler() {
  std::call_once(g_fork_handler_once, [] { ::pthread_atfork(nullptr, nullptr, forget_identity_in_child); });
}

}  // namespace

const ThreadIdentity& load_thread_identity() noexcept {
  // A forked child starts with its parent's cached identity in this thread's
  // slot; clearing it there makes the child look itself up again.
  install_fork_handler();
  ThreadIdentity id;
  id.tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id.tid);
  StatFields f;
  if (read_stat(path, f) == StatRead::ok) id.start_ticks = f.start_ticks;
  t_identity = id;
  return t_identity;
}

namespace {

// Whether /proc/<id>/stat shows a live thread (or process) that started at
// `start_ticks` (0: whichever holds the id now).
bool alive_by_stat(std::uint32_t id, std::uint64_t start_ticks) noexcept {
  if (id == 0) return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id);
  StatFields f;
  const StatRead r = read_stat(path, f);
  if (r == StatRead::gone) return false;
  if (r == StatRead::unknown) return true;  // cannot tell: never declare a live holder dead
  if (f.state == 'Z' || f.state == 'X' || f.state == 'x') return false;  // killed, not yet reaped
  return start_ticks == 0 || f.start_ticks == start_ticks;
}

}  // namespace

bool thread_alive(std::uint32_t tid, std::uint64_t start_ticks) noexcept { return alive_by_stat(tid, start_ticks); }

ThreadIdentity this_process() noexcept {
  std::uint32_t pid = g_process_id.load(std::memory_order_acquire);
  if (pid == 0) [[unlikely]] {
    install_fork_handler();
    pid = static_cast<std::uint32_t>(::getpid());
    g_process_start.store(process_start_ticks(static_cast<int>(pid)), std::memory_order_relaxed);
    g_process_id.store(pid, std::memory_order_release);  // racing threads store the same values
  }
  return {pid, g_process_start.load(std::memory_order_relaxed)};
}

bool process_alive(std::uint32_t pid, std::uint64_t start_ticks) noexcept { return alive_by_stat(pid, start_ticks); }

int process_of_thread(std::uint32_t tid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/status", tid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "\nTgid:");
  return p != nullptr ? std::atoi(p + 6) : 0;
}

std::uint64_t process_start_ticks(int pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  StatFields f;
  if (read_stat(path, f) != StatRead::ok || f.state == 'Z' || f.state == 'X') return 0;
  return f.start_ticks;
}

char thread_run_state(std::uint32_t tid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", tid);
  StatFields f;
  return read_stat(path, f) == StatRead::ok ? f.state : '\0';
}

}  // namespace ipckit::detail
