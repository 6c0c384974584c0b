// src/redis/pool_worker.cpp — serve_pool over Redis: a worker program's loop
// and its heartbeat thread (the protocol is in ipckit/redis/pool.hpp).
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "../pool_internal.hpp"
#include "ipckit/current_process.hpp"
#include "ipckit/error.hpp"
#include "ipckit/redis/pool.hpp"
#include "ipckit/worker_local.hpp"
#include "pool_common.hpp"
#include "pool_scripts.hpp"

namespace ipckit::redis::detail {
namespace {

using namespace std::chrono_literals;
using Args = Connection::Args;
using ipckit::detail::Deadline;

long long unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A finished task, posted by the next take.
struct Finished {
  std::string client, stream_id, id, status, bytes;
};

class Worker {
 public:
  Worker(const Hub& hub, std::string_view name, const PoolOptions& o)
      : state_(hub.state()),
        keys_(name),
        options_(o),
        name_(new_client_base() + "/w"),
        started_ms_(unix_ms()),
        conn_(state_, keys_.label),
        beat_conn_(state_, keys_.label) {
    open_pool(conn_, keys_, options_);
  }

  void serve() {
    heart_ = std::thread([this] { beat(); });
    struct Join {
      Worker& w;
      ~Join() {
        {
          std::lock_guard lock(w.m_);
          w.leaving_ = true;
        }
        w.beat_cv_.notify_all();
        w.heart_.join();
      }
    } join{*this};
    std::vector<Finished> done;
    Read read;  // what the last blocking read delivered, told to the next take
    for (;;) {
      if (options_.stop != nullptr && *options_.stop != 0) break;
      Reply r = take(done, options_.prefetch, read);
      done.clear();
      read = {};
      const std::string_view what = reply_text(*r->element[0]);
      if (what == "closed") break;
      if (what == "empty") {
        // Sleep in the server until a task (or a close marker) comes; at
        // most 100 ms, to look at the stop flag and for expired leases.
        // XREADGROUP delivers a new task to one blocked worker (the others
        // sleep on, where XREAD would wake them all to race for it).
        read = wait_for_tasks(done);
        continue;
      }
      for (std::size_t i = 1; i + 4 <= r->elements; i += 4)
        done.push_back(run(std::string(reply_text(*r->element[i])), std::string(reply_text(*r->element[i + 2])),
                           reply_text(*r->element[i + 3])));
    }
    if (!done.empty() || read.tasks != 0 || !read.markers.empty()) (void)take(done, 0, read);
    Args bye{"HDEL", keys_.workers, name_};
    (void)conn_.call(bye, Deadline::now());
  }

 private:
  // Entries a blocking XREADGROUP delivered: the take script counts the
  // tasks out of `queued` and handles the close markers, as for its own reads.
  struct Read {
    std::size_t tasks = 0;
    std::vector<std::string> markers;
  };

  [[noreturn]] void gone() const {
    throw NotFound(keys_.name, "ipckit: " + keys_.label + " was removed while this worker served it");
  }

  // Blocks (100 ms at most) for new tasks, runs those delivered into `done`.
  Read wait_for_tasks(std::vector<Finished>& done) {
    Args argv{"XREADGROUP", "GROUP", "workers", name_,       "COUNT", std::to_string(std::max(1U, options_.prefetch)),
              "BLOCK",      "100",   "STREAMS", keys_.tasks, ">"};
    Reply r = conn_.call(argv, Deadline::never(), 100ms);
    Read read;
    if (r->type == REDIS_REPLY_ERROR) {
      if (reply_text(*r).find("NOGROUP") != std::string_view::npos) gone();
      raise_reply_error(*r, keys_.label, "waiting for tasks");
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->elements != 2) return read;
    const redisReply* entries = r->element[0]->element[1];
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const redisReply* e = entries->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) continue;
      const std::string id(reply_text(*e->element[0]));
      std::string_view client, record;
      bool marker = false;
      const redisReply* f = e->element[1];
      for (std::size_t j = 0; j + 1 < f->elements; j += 2) {
        const std::string_view k = reply_text(*f->element[j]);
        if (k == "x") marker = true;
        if (k == "c") client = reply_text(*f->element[j + 1]);
        if (k == "t") record = reply_text(*f->element[j + 1]);
      }
      if (marker) {
        read.markers.push_back(id);
      } else {
        // Counted out of `queued` by the take that posts its result (no
        // round trip of its own before it runs). A worker killed meanwhile
        // leaves it counted until a take next finds no new entries, which
        // sets `queued` to 0 (pool_scripts.cpp).
        ++read.tasks;
        done.push_back(run(id, std::string(client), record));
      }
    }
    return read;
  }

  // Posts `done`, records the heartbeat, takes up to `max` tasks.
  Reply take(const std::vector<Finished>& done, unsigned max) { return take(done, max, Read{}); }
  Reply take(const std::vector<Finished>& done, unsigned max, const Read& read) {
    Args argv{keys_.meta, keys_.tasks, keys_.dead,          keys_.workers,
              name_,      info(),      std::to_string(max), std::to_string(done.size())};
    for (const Finished& f : done) {
      argv.push_back(f.client);
      argv.push_back(f.stream_id);
      argv.push_back(f.id);
      argv.push_back(f.status);
      argv.push_back(f.bytes);
    }
    argv.push_back(std::to_string(read.tasks));
    argv.push_back(std::to_string(read.markers.size()));
    for (const std::string& id : read.markers) argv.push_back(id);
    Reply r = conn_.eval(kPoolTakeScript, 4, argv, Deadline::never());
    if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, keys_.label, "taking tasks");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
      throw SystemError(keys_.name, "ipckit: " + keys_.label + ": unexpected reply to the take script");
    if (reply_text(*r->element[0]) == "gone") gone();
    return r;
  }

  std::string info() {
    std::lock_guard lock(m_);
    return "pid=" + std::to_string(getpid()) + ";started=" + std::to_string(started_ms_) +
           ";tasks=" + std::to_string(tasks_done_) + ";task=" + std::to_string(task_) +
           ";since=" + std::to_string(task_since_ms_);
  }

  Finished run(std::string stream_id, std::string client, std::string_view record) {
    Finished f{std::move(client), std::move(stream_id), {}, "ok", {}};
    TaskRecord t;
    if (!decode_task(record, t)) {
      f.id = std::string(record.substr(0, std::min<std::size_t>(8, record.size())));
      f.status = "threw";
      f.bytes = std::string("ipckit::DecodeError") + '\0' + "the task record does not decode";
      return f;
    }
    f.id = id_bytes(t.id);
    {
      std::lock_guard lock(m_);
      task_ = t.id;
      task_since_ms_ = unix_ms();
      task_stream_id_ = f.stream_id;
      task_client_ = f.client;
      task_deadline_ = t.timeout_ns > 0 ? std::chrono::steady_clock::now() + std::chrono::nanoseconds(t.timeout_ns)
                                        : std::chrono::steady_clock::time_point::max();
    }
    // A timeout to watch: wake the heartbeat thread for it (not for every
    // task: on a busy machine that wake-up costs the task's round trip).
    if (t.timeout_ns > 0) beat_cv_.notify_all();
    std::string out;
    try {
      PoolTasks::Entry entry{};
      const std::string name(t.name);
      if (!pool_tasks().find(name, entry))
        throw NotFound(name, "ipckit: " + keys_.label + ": no task named '" + name + "' in worker pid " +
                                 std::to_string(getpid()) +
                                 "; register it with IPCKIT_TASK in the worker program (pool_tasks.hpp)");
      const ipckit::detail::InvokeFn invoke = t.chunk ? entry.chunk : entry.invoke;
      if (invoke == nullptr)
        throw InvalidArgument(name, "ipckit: " + keys_.label + ": map() over '" + name +
                                        "', which this worker program registered with another signature");
      invoke(entry.fn, t.args.data(), t.args.size(), out);
      if (out.size() > options_.max_message) {
        f.status = "toolarge";
        f.bytes = std::to_string(out.size());
      } else {
        f.bytes = std::move(out);
      }
    } catch (...) {
      f.status = "threw";
      f.bytes = ipckit::detail::describe_current_exception();
    }
    std::lock_guard lock(m_);
    task_ = 0;
    task_since_ms_ = 0;
    task_stream_id_.clear();
    task_deadline_ = std::chrono::steady_clock::time_point::max();
    ++tasks_done_;
    return f;
  }

  // Every third of the visibility timeout (at most 1 s): keeps the running
  // task's lease, records the heartbeat; ends the program when the running
  // task is past its timeout, after posting its Timeout.
  void beat() {
    const auto period = std::clamp<std::chrono::milliseconds>(options_.visibility_timeout / 3, 5ms, 1000ms);
    std::unique_lock lock(m_);
    for (;;) {
      const auto wake = std::min(std::chrono::steady_clock::now() + period, task_deadline_);
      beat_cv_.wait_until(lock, wake, [&] { return leaving_; });
      if (leaving_) return;
      const std::string sid = task_stream_id_;
      const bool late = !sid.empty() && std::chrono::steady_clock::now() >= task_deadline_;
      const Finished timed_out{task_client_, sid, id_bytes(task_), "timeout", std::to_string(getpid())};
      lock.unlock();
      try {
        if (late) {
          Args argv{keys_.meta,
                    keys_.tasks,
                    keys_.dead,
                    keys_.workers,
                    name_,
                    "ended=timeout",
                    "0",
                    "1",
                    timed_out.client,
                    timed_out.stream_id,
                    timed_out.id,
                    timed_out.status,
                    timed_out.bytes};
          (void)beat_conn_.eval(kPoolTakeScript, 4, argv, Deadline::now());
          Args bye{"HDEL", keys_.workers, name_};
          (void)beat_conn_.call(bye, Deadline::now());
          std::_Exit(124);  // the task cannot be stopped from outside: its program ends, as timeout(1) does
        }
        if (!sid.empty()) {
          Args claim{"XCLAIM", keys_.tasks, "workers", name_, "0", sid, "JUSTID"};
          (void)beat_conn_.call(claim, Deadline::now());
        }
        Args argv{keys_.meta, keys_.tasks, keys_.dead, keys_.workers, name_, info(), "0", "0"};
        (void)beat_conn_.eval(kPoolTakeScript, 4, argv, Deadline::now());
      } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the next beat tries again
      }
      lock.lock();
    }
  }

  std::shared_ptr<const HubState> state_;
  PoolKeys keys_;
  PoolOptions options_;
  std::string name_;
  long long started_ms_;
  Connection conn_, beat_conn_;

  std::mutex m_;  // guards what the heartbeat reads
  std::condition_variable beat_cv_;
  bool leaving_ = false;
  std::uint64_t task_ = 0, tasks_done_ = 0;
  long long task_since_ms_ = 0;
  std::string task_stream_id_, task_client_;
  std::chrono::steady_clock::time_point task_deadline_ = std::chrono::steady_clock::time_point::max();
  std::thread heart_;
};

}  // namespace
}  // namespace ipckit::redis::detail

namespace ipckit::redis {

void serve_pool(const Hub& hub, std::string_view name, const PoolOptions& options) {
  detail::Worker w(hub, name, options);
  ipckit::detail::set_pool_worker(true);  // current_process().pool_worker, as in a forked worker
  w.serve();
  ipckit::detail::run_worker_teardown();  // the worker_local values this program emplaced, the last first
}

}  // namespace ipckit::redis
