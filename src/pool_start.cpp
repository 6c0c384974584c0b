// pool_start.cpp — a pool's workers report whether their initializer ran
// (see detail/pool_start.hpp).
#include "ipckit/detail/pool_start.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "ipckit/error.hpp"
#include "ipckit/process.hpp"
#include "ipckit/task_error.hpp"
#include "ipckit/worker_local.hpp"

namespace ipckit::detail {

namespace {

constexpr char kInitialized = 'I';
constexpr char kFailed = 'F';  // then "<type>\0<what>"
// How often a wait without a pidfd looks whether the worker still runs.
constexpr int kPollMs = 100;

// The what() of the exception being handled.
std::string current_what() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

// The worker's pidfd, or -1 (then the wait looks every kPollMs).
int sentinel_of(const Process& worker) {
  try {
    return worker.sentinel();
  } catch (const Error&) {
    return -1;
  }
}

}  // namespace

std::string describe_exit(const std::optional<int>& code) {
  if (!code) return "ended";
  if (*code >= 0) return "exited with code " + std::to_string(*code);
  const char* abbrev = ::sigabbrev_np(-*code);
  return "was killed by signal " + std::to_string(-*code) +
         (abbrev != nullptr ? " (SIG" + std::string(abbrev) + ")" : "");
}

WorkerStarts::WorkerStarts(std::string pool, void (*initializer)(), unsigned workers)
    : pool_(std::move(pool)), initializer_(initializer), slots_(workers) {}

WorkerStarts::~WorkerStarts() {
  for (Slot& s : slots_) close_slot(s);
}

void WorkerStarts::close_slot(Slot& s) noexcept {
  for (int* fd : {&s.rd, &s.wr}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void WorkerStarts::forking(unsigned w) {
  if (initializer_ == nullptr) return;
  Slot& s = slots_.at(w);
  close_slot(s);
  s.initialized = false;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw SystemError(pool_,
                      "ipckit: pool '" + pool_ + "': no pipe for a worker's start report: " + std::strerror(errno) +
                          "; close some descriptors (ulimit -n)",
                      std::error_code(errno, std::generic_category()));
  s.rd = fds[0];
  s.wr = fds[1];
}

void WorkerStarts::forked(unsigned w) {
  if (initializer_ == nullptr) return;
  Slot& s = slots_.at(w);
  if (s.wr >= 0) ::close(s.wr);
  s.wr = -1;
}

void WorkerStarts::initialize(unsigned w) noexcept {
  if (initializer_ == nullptr) return;
  const int wr = std::exchange(slots_[w].wr, -1);
  for (Slot& s : slots_) close_slot(s);  // the other workers' report pipes are none of this one's business
  std::string record(1, kInitialized);
  try {
    initializer_();
  } catch (...) {
    record = kFailed + current_exception_type_name() + '\0' + current_what();
  }
  record.resize(std::min<std::size_t>(record.size(), PIPE_BUF));  // one write, whole
  (void)!::write(wr, record.data(), record.size());
  ::close(wr);
  if (record[0] == kInitialized) return;
  run_worker_teardown();  // what the initializer emplaced before it threw
  std::_Exit(1);
}

std::optional<std::string> WorkerStarts::outcome(unsigned w, const Process& worker, bool block) {
  Slot& s = slots_.at(w);
  if (initializer_ == nullptr || s.initialized) return std::nullopt;
  const std::string who = "worker pid " + std::to_string(worker.pid());
  for (;;) {
    // Whether it ended, before the read: a record written before the end is in the pipe by then.
    const bool ended = !worker.is_alive();
    char buf[PIPE_BUF];
    const ssize_t n = s.rd >= 0 ? ::read(s.rd, buf, sizeof buf) : 0;
    if (n > 0 && buf[0] == kInitialized) {
      s.initialized = true;
      close_slot(s);
      return std::nullopt;
    }
    if (n > 0) {
      close_slot(s);
      const std::string_view body(buf + 1, static_cast<std::size_t>(n - 1));
      const std::size_t nul = std::min(body.find('\0'), body.size());
      const std::string_view what = nul < body.size() ? body.substr(nul + 1) : std::string_view();
      return "the initializer threw " + std::string(body.substr(0, nul)) + ": " + std::string(what) + " (in " + who +
             ")";
    }
    if (ended) {
      close_slot(s);
      return who + " " + describe_exit(worker.exitcode()) + " before its initializer finished";
    }
    if (!block) return std::nullopt;  // still initializing
    // At end-of-file (n == 0) no record will come: the worker is dying; wait for its end (and exit status) alone.
    pollfd fds[2] = {{n == 0 ? -1 : s.rd, POLLIN, 0}, {sentinel_of(worker), POLLIN, 0}};
    (void)::poll(fds, 2, kPollMs);
  }
}

void WorkerStarts::await_all(const std::vector<Process>& workers) {
  for (unsigned w = 0; w < slots_.size() && w < workers.size(); ++w) {
    const std::optional<std::string> failed = outcome(w, workers[w], true);
    if (failed)
      throw ProcessError(pool_, "ipckit: pool '" + pool_ + "' was not started: " + *failed +
                                    "; the workers already started were stopped. Fix the initializer "
                                    "(PoolOptions::initializer): a pool does not start workers it would have to "
                                    "restart in a loop");
  }
}

std::optional<std::string> WorkerStarts::failure_of(unsigned w, const Process& worker) {
  return outcome(w, worker, false);
}

}  // namespace ipckit::detail
