// src/redis/pool_client.cpp — a ProcessPool over Redis: the client's engine
// (the protocol is in ipckit/redis/pool.hpp, the keys in pool_scripts.hpp).
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "ipckit/error.hpp"
#include "ipckit/redis/pool.hpp"
#include "ipckit/task_error.hpp"
#include "pool_common.hpp"
#include "pool_scripts.hpp"

namespace ipckit::redis::detail {
namespace {

using namespace std::chrono_literals;
using ipckit::detail::FutureState;
using ipckit::detail::InvokeFn;
using Args = Connection::Args;

constexpr std::size_t kSendBatch = 256;

class RedisPool final : public ipckit::detail::PoolEngine {
 public:
  RedisPool(const Hub& hub, std::string_view name, const PoolOptions& o)
      : state_(hub.state()),
        keys_(name),
        options_(o),
        label_(std::make_shared<const std::string>(keys_.name)),
        client_(new_client_base() + "/c"),
        results_(keys_.results(client_)),
        send_conn_(state_, keys_.label),
        collect_conn_(state_, keys_.label),
        misc_conn_(state_, keys_.label) {
    open_pool(misc_conn_, keys_, options_);
    sender_ = std::thread([this] { send_loop(); });
    collector_ = std::thread([this] { collect_loop(); });
  }

  ~RedisPool() override {
    try {
      shutdown(true, false);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor reports nothing
    }
    stop_threads();
    try {  // this client's result stream: nobody else reads it
      Args del{"DEL", results_};
      (void)misc_conn_.call(del, ipckit::detail::Deadline::now());
    } catch (...) {  // NOLINT(bugprone-empty-catch): it expires a day after its last result anyway
    }
  }
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  std::shared_ptr<FutureState> submit(std::uintptr_t fn, InvokeFn invoke, std::string_view args,
                                      ipckit::detail::Deadline deadline) override {
    PoolTasks::Entry entry{};
    const std::string task = pool_tasks().name_of(fn, entry);
    if (task.empty())
      throw InvalidArgument(keys_.name, "ipckit: " + keys_.label +
                                            ": submit() of a function that is not registered; a Redis pool's "
                                            "workers run tasks by name: register it with IPCKIT_TASK (pool_tasks.hpp)");
    if (args.size() > options_.max_message)
      throw MessageTooLarge(keys_.name, "ipckit: " + keys_.label + ": the arguments of '" + task + "' take " +
                                            std::to_string(args.size()) + " bytes, above its max_message of " +
                                            std::to_string(options_.max_message) +
                                            "; pass less, or make the pool with a larger max_message");
    std::unique_lock lock(m_);
    const auto room = [&] { return closed_ || in_flight_ < options_.max_pending; };
    if (deadline.is_never()) {
      room_.wait(lock, room);
    } else if (!room_.wait_until(lock, deadline.when(), room)) {
      return nullptr;
    }
    if (closed_) raise_closed();
    auto st = std::make_shared<FutureState>();
    st->id = ++next_id_;
    st->pool_name = label_;
    Outgoing out{st, encode_task({.id = st->id,
                                  .timeout_ns = options_.task_timeout.count(),
                                  .chunk = invoke != entry.invoke && invoke == entry.chunk,
                                  .name = task,
                                  .args = args})};
    owners_.emplace(st->id, st);
    // An idle pool (nothing in flight, so the sender holds no batch): an
    // untimed submit sends its task itself, saving the hand-over to the
    // sender thread (a wake-up on the round trip). Otherwise the sender
    // batches it with the others.
    const bool direct = in_flight_ == 0 && deadline.is_never();
    ++in_flight_;
    ++submitted_;
    if (direct) {
      lock.unlock();
      std::vector<Outgoing> batch;
      batch.push_back(std::move(out));
      std::lock_guard send(send_m_);
      send_batch(batch);
      return st;
    }
    outbox_.push_back(std::move(out));
    lock.unlock();
    work_.notify_one();
    return st;
  }

  void shutdown(bool wait, bool cancel_futures) override {
    std::vector<std::shared_ptr<FutureState>> cancelled;
    {
      std::unique_lock lock(m_);
      closed_ = true;
      if (cancel_futures) {
        for (auto& out : outbox_) {
          owners_.erase(out.state->id);
          cancelled.push_back(std::move(out.state));
        }
        in_flight_ -= outbox_.size();
        outbox_.clear();
      }
    }
    for (auto& st : cancelled)
      ipckit::detail::finish_future(
          *st, {},
          std::make_exception_ptr(Closed(keys_.name, "ipckit: " + st->label() + " was cancelled by shutdown()")));
    room_.notify_all();
    if (!wait) return;
    std::unique_lock lock(m_);
    drained_.wait(lock, [&] { return in_flight_ == 0; });
  }

  [[nodiscard]] unsigned workers() const noexcept override {
    try {
      return static_cast<unsigned>(live_workers().size());
    } catch (...) {
      return 0;
    }
  }
  [[nodiscard]] std::vector<pid_t> worker_pids() const override {
    std::vector<pid_t> out;
    for (const auto& w : live_workers()) out.push_back(w.pid);
    return out;
  }
  [[nodiscard]] std::uint64_t restarts() const noexcept override { return 0; }
  [[nodiscard]] const std::string& name() const noexcept override { return keys_.name; }

  [[nodiscard]] PoolStats stats() const override {
    PoolStats s;
    for (const auto& w : live_workers()) {
      PoolWorkerStats ws;
      ws.index = static_cast<unsigned>(s.per_worker.size());
      ws.pid = w.pid;
      ws.task = w.task;
      ws.running_for = w.running_for;
      ws.tasks_done = w.tasks;
      if (w.task != 0) ++s.running;
      s.per_worker.push_back(ws);
    }
    s.workers = s.workers_alive = static_cast<unsigned>(s.per_worker.size());
    {
      Args argv{"HGET", keys_.meta, "queued"};
      std::lock_guard lock(misc_m_);
      Reply r = misc_conn_.call(argv, ipckit::detail::Deadline::now());
      s.pending = static_cast<std::size_t>(reply_integer(*r));
    }
    std::lock_guard lock(m_);
    s.submitted = submitted_;
    s.succeeded = succeeded_;
    s.failed = failed_;
    s.timed_out = timed_out_;
    s.cancelled = 0;
    return s;
  }

 private:
  struct Outgoing {
    std::shared_ptr<FutureState> state;
    std::string record;
  };
  struct Worker {
    pid_t pid = 0;
    std::uint64_t task = 0, tasks = 0;
    std::chrono::nanoseconds running_for{0};
  };

  [[noreturn]] void raise_closed() const {
    throw Closed(keys_.name, "ipckit: " + keys_.label + " is shut down (or closed); no more tasks can be submitted");
  }

  // The workers whose heartbeat is younger than the visibility timeout.
  std::vector<Worker> live_workers() const {
    Args time{"TIME"};
    Args argv{"HGETALL", keys_.workers};
    std::lock_guard lock(misc_m_);
    Reply now_r = misc_conn_.call(time, ipckit::detail::Deadline::now());
    Reply r = misc_conn_.call(argv, ipckit::detail::Deadline::now());
    std::vector<Worker> out;
    if (now_r->type != REDIS_REPLY_ARRAY || now_r->elements != 2 || r->type != REDIS_REPLY_ARRAY) return out;
    const long long now_ms = reply_integer(*now_r->element[0]) * 1000 + reply_integer(*now_r->element[1]) / 1000;
    for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
      const std::string info(reply_text(*r->element[i + 1]));
      const auto field = [&](const char* key) -> long long {
        const std::string k = std::string(key) + "=";
        auto p = info.find(k);
        if (p == std::string::npos || (p != 0 && info[p - 1] != ';')) return 0;
        return std::strtoll(info.c_str() + p + k.size(), nullptr, 10);
      };
      if (now_ms - field("seen") > options_.visibility_timeout.count()) continue;
      Worker w;
      w.pid = static_cast<pid_t>(field("pid"));
      w.tasks = static_cast<std::uint64_t>(field("tasks"));
      w.task = static_cast<std::uint64_t>(field("task"));
      const long long since = field("since");
      if (w.task != 0 && since > 0 && now_ms > since) w.running_for = std::chrono::milliseconds(now_ms - since);
      out.push_back(w);
    }
    return out;
  }

  void send_loop() {
    for (;;) {
      std::vector<Outgoing> batch;
      {
        std::unique_lock lock(m_);
        work_.wait(lock, [&] { return stopping_ || !outbox_.empty(); });
        if (outbox_.empty()) return;
        const std::size_t n = std::min(kSendBatch, outbox_.size());
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(outbox_.front()));
          outbox_.pop_front();
        }
      }
      std::lock_guard send(send_m_);
      send_batch(batch);
    }
  }

  // One submit script call for `batch`; on failure its futures fail. Call
  // with send_m_ held and m_ not.
  void send_batch(std::vector<Outgoing>& batch) {
    Args argv{keys_.meta,
              keys_.tasks,
              keys_.producers,
              client_,
              std::to_string(++send_seq_),
              std::to_string(options_.retries)};
    for (auto& o : batch) argv.push_back(std::move(o.record));
    std::exception_ptr failed;
    try {
      Reply r = send_conn_.eval(kPoolSubmitScript, 3, argv, ipckit::detail::Deadline::never());
      if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, keys_.label, "a submit");
      const std::string_view why = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? reply_text(*r->element[0]) : "";
      if (why == "closed") {
        std::lock_guard lock(m_);
        closed_ = true;
        failed = std::make_exception_ptr(
            Closed(keys_.name, "ipckit: " + keys_.label + " was closed (close_pool) before this task reached it"));
      } else if (why == "gone") {
        failed = std::make_exception_ptr(
            NotFound(keys_.name, "ipckit: " + keys_.label + " was removed before this task reached it"));
      }
    } catch (...) {
      failed = std::current_exception();
    }
    if (failed)
      for (auto& o : batch) settle(o.state->id, {}, failed);
  }

  void collect_loop() {
    std::string last = "0-0";
    for (;;) {
      {
        std::lock_guard lock(m_);
        if (stopping_ && in_flight_ == 0) return;
      }
      Args argv{"XREAD", "COUNT", "1024", "BLOCK", "100", "STREAMS", results_, last};
      Reply r;
      try {
        r = collect_conn_.call(argv, ipckit::detail::Deadline::never(), 100ms);
      } catch (const ConnectionLost&) {
        fail_all(std::current_exception());
        continue;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) continue;
      const redisReply* entries = r->element[0]->elements == 2 ? r->element[0]->element[1] : nullptr;
      if (entries == nullptr) continue;
      Args del{"XDEL", results_};
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        last = std::string(reply_text(*e->element[0]));
        del.push_back(last);
        // i, s, d: a result (complete() on its d, so that an entry could
        // carry several).
        std::string_view id, status;
        const redisReply* f = e->element[1];
        for (std::size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2) {
          const std::string_view k = reply_text(*f->element[j]);
          const std::string_view v = reply_text(*f->element[j + 1]);
          if (k == "i") id = v;
          if (k == "s") status = v;
          if (k == "d") complete(id_of(id), status, v);
        }
      }
      try {
        (void)collect_conn_.call(del, ipckit::detail::Deadline::now());
      } catch (const ConnectionLost&) {  // NOLINT(bugprone-empty-catch): the stream expires on its own
      }
    }
  }

  void complete(std::uint64_t id, std::string_view status, std::string_view bytes) {
    std::shared_ptr<FutureState> st;
    {
      std::lock_guard lock(m_);
      const auto it = owners_.find(id);
      if (it == owners_.end()) return;  // a task that ran twice: its first result settled it
      st = it->second;
    }
    const std::string label = st->label();
    if (status == "ok") {
      settle(id, std::string(bytes), nullptr);
    } else if (status == "threw") {
      const std::string body(bytes);
      const std::size_t nul = body.find('\0');
      settle(id, {},
             ipckit::detail::task_failure(label, body.substr(0, nul),
                                          nul == std::string::npos ? std::string() : body.substr(nul + 1)));
    } else if (status == "died") {
      settle(
          id, {},
          std::make_exception_ptr(WorkerDied(
              label, "ipckit: " + label + ": the worker running it died or went silent for the visibility timeout (" +
                         std::string(bytes) + " time(s); retries " + std::to_string(options_.retries) + ")")));
    } else if (status == "timeout") {
      settle(id, {},
             std::make_exception_ptr(Timeout(label, "ipckit: " + label +
                                                        " ran past the pool's task_timeout; its "
                                                        "worker program (pid " +
                                                        std::string(bytes) + ") was ended")));
    } else if (status == "toolarge") {
      settle(
          id, {},
          std::make_exception_ptr(MessageTooLarge(label, "ipckit: " + label + ": its result of " + std::string(bytes) +
                                                             " bytes exceeds the pool's max_message; return less, "
                                                             "or make the pool with a larger max_message")));
    } else {
      settle(id, {},
             std::make_exception_ptr(SystemError(label, "ipckit: " + label + ": a worker answered with status '" +
                                                            std::string(status) + "' this client does not know")));
    }
  }

  void settle(std::uint64_t id, std::string result, std::exception_ptr error) {
    std::shared_ptr<FutureState> st;
    {
      std::lock_guard lock(m_);
      const auto it = owners_.find(id);
      if (it == owners_.end()) return;
      st = std::move(it->second);
      owners_.erase(it);
      if (error == nullptr) {
        ++succeeded_;
      } else {
        ++failed_;
      }
    }
    ipckit::detail::finish_future(*st, std::move(result), std::move(error));
    {
      std::lock_guard lock(m_);
      if (--in_flight_ == 0) drained_.notify_all();
    }
    room_.notify_one();
  }

  void fail_all(const std::exception_ptr& error) {
    std::vector<std::uint64_t> ids;
    {
      std::lock_guard lock(m_);
      for (const auto& [id, st] : owners_) ids.push_back(id);
    }
    for (const std::uint64_t id : ids) settle(id, {}, error);
  }

  void stop_threads() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    work_.notify_all();
    if (sender_.joinable()) sender_.join();
    if (collector_.joinable()) collector_.join();
  }

  std::shared_ptr<const HubState> state_;
  PoolKeys keys_;
  PoolOptions options_;
  std::shared_ptr<const std::string> label_;
  std::string client_, results_;
  std::mutex send_m_;  // the sender thread's, or a direct submit's (see submit)
  std::uint64_t send_seq_ = 0;
  Connection send_conn_, collect_conn_;
  mutable std::mutex misc_m_;
  mutable Connection misc_conn_;

  mutable std::mutex m_;
  std::condition_variable room_, work_, drained_;
  std::deque<Outgoing> outbox_;
  std::unordered_map<std::uint64_t, std::shared_ptr<FutureState>> owners_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_id_ = 0, submitted_ = 0, succeeded_ = 0, failed_ = 0, timed_out_ = 0;
  bool closed_ = false, stopping_ = false;
  std::thread sender_, collector_;
};

}  // namespace
}  // namespace ipckit::redis::detail

namespace ipckit::redis {

ProcessPool pool(const Hub& hub, std::string_view name, const PoolOptions& options) {
  return ipckit::detail::PoolAccess::make(std::make_unique<detail::RedisPool>(hub, name, options));
}

ProcessPool Hub::pool(std::string_view name, const PoolOptions& options) const {
  return redis::pool(*this, name, options);
}
ProcessPool Hub::pool(std::string_view name) const { return redis::pool(*this, name, PoolOptions{}); }

bool close_pool(const Hub& hub, std::string_view name) {
  const detail::PoolKeys k(name);
  detail::Connection c(hub.state(), k.label);
  detail::Connection::Args argv{k.meta, k.tasks};
  detail::Reply r = c.eval(detail::kPoolCloseScript, 2, argv, ipckit::detail::Deadline::never());
  if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, k.label, "closing it");
  return r->type == REDIS_REPLY_ARRAY && r->elements > 0 && detail::reply_text(*r->element[0]) == "ok";
}

bool remove_pool(const Hub& hub, std::string_view name) {
  const detail::PoolKeys k(name);
  detail::Connection c(hub.state(), k.label);
  detail::Connection::Args argv{"DEL", k.meta, k.tasks, k.dead, k.workers, k.producers};
  // And every client's result stream (one slot: SCAN on the node that has it).
  std::string cursor = "0";
  do {
    detail::Connection::Args scan{"SCAN", cursor, "MATCH", k.results("*"), "COUNT", "1000"};
    detail::Reply s = c.call(scan, ipckit::detail::Deadline::never());
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) break;
    cursor = std::string(detail::reply_text(*s->element[0]));
    for (std::size_t i = 0; i < s->element[1]->elements; ++i)
      argv.emplace_back(detail::reply_text(*s->element[1]->element[i]));
  } while (cursor != "0");
  detail::Reply r = c.call(argv, ipckit::detail::Deadline::never());
  if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, k.label, "DEL");
  return r->integer > 0;
}

}  // namespace ipckit::redis
