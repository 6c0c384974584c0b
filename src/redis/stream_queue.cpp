// src/redis/stream_queue.cpp — StreamQueue: a Redis queue's engine (the
// scripts are in stream_scripts.cpp, the protocol in queue.hpp).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "connection.hpp"
#include "ipckit/error.hpp"
#include "ipckit/redis/queue.hpp"
#include "queue_common.hpp"
#include "stream_scripts.hpp"

namespace ipckit::redis::detail {
namespace {

using namespace std::chrono_literals;
using Args = Connection::Args;

// Items per put script: a script holds the server while it runs.
constexpr std::size_t kPutBatch = 256;

const char* kind_name(QueueKind k) { return k == QueueKind::Joinable ? "joinable" : "queue"; }

struct Entry {
  std::string id;
  std::uint32_t deliveries = 1;
  std::string bytes;
};

}  // namespace

struct StreamQueue::Impl {
  Impl(const Hub& hub, std::string_view name_in, QueueKind k, const QueueOptions& o)
      : state(hub.state()),
        name(checked_name(name_in, "queue")),
        label(std::string(k == QueueKind::Joinable ? "joinable queue '" : "queue '") + name + "' on " + state->url),
        kind(k),
        options(o),
        put_conn(state, label),
        get_conn(state, label),
        misc_conn(state, label) {
    consumer = state->client_base + "/" + std::to_string(++handles);
    producer = consumer;
    pid = put_pid = getpid();
    const std::string base = "ipckit:{" + name + "}";
    k_meta = base;
    k_items = base + ":items";
    k_dead = base + ":dead";
    k_producers = base + ":producers";
    options = checked_options(options, name, label);
  }

  // A handle used in a forked child: the child is another consumer and
  // producer; what the parent got stays the parent's. Call with get_m held.
  void forked() {
    if (pid == getpid()) return;
    pid = getpid();
    consumer = new_client_base() + "/" + std::to_string(++handles);
    to_ack.clear();
    held.clear();
    stash.clear();
    recover = false;
  }
  static inline std::atomic<std::uint64_t> handles{0};

  std::shared_ptr<const HubState> state;
  std::string name, label, consumer;
  int pid = 0;
  std::string k_meta, k_items, k_dead, k_producers;
  QueueKind kind;
  QueueOptions options;

  std::mutex put_m;  // each side its own connection: a blocked get does not hold up puts
  Connection put_conn;
  std::uint64_t put_seq = 0;
  std::string producer;  // the name its puts are applied once under
  int put_pid = 0;

  std::mutex get_m;
  Connection get_conn;
  std::vector<std::string> to_ack;  // Queue: the last get's items, acknowledged by the next get
  std::deque<std::string> held;     // JoinableQueue: got, not yet task_done
  std::deque<Entry> stash;          // got from Redis, not yet handed out (after a DecodeError)
  std::vector<std::uint32_t> counts;
  bool recover = false;  // a get's reply was lost: look at our own pending entries first

  std::mutex misc_m;
  Connection misc_conn;

  Reply eval(Connection& c, const Script& s, Args argv, Deadline d, const std::function<void(Args&)>& resend = {},
             int nkeys = 3) {
    Reply r = c.eval(s, nkeys, argv, d, resend);
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string_view t = reply_text(*r);
      if (t.find("NOGROUP") != std::string_view::npos) gone();
      raise_reply_error(*r, label, std::string("the ") + s.name + " script");
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->type != REDIS_REPLY_STRING)
      throw SystemError(name, "ipckit: " + label + ": unexpected reply to the " + s.name + " script");
    if (reply_text(*r->element[0]) == "gone") gone();
    return r;
  }
  ~Impl() {
    // A Queue's last items are done once its handle goes (see queue.hpp).
    if (to_ack.empty() || pid != getpid()) return;
    try {
      Args argv{"XACK", k_items, "ipckit"};
      argv.insert(argv.end(), to_ack.begin(), to_ack.end());
      (void)get_conn.call(argv, Deadline::now());
      argv = {"XDEL", k_items};
      argv.insert(argv.end(), to_ack.begin(), to_ack.end());
      (void)get_conn.call(argv, Deadline::now());
    } catch (const Error&) {
      // Unreachable server: the items go to another consumer after their lease.
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::vector<std::string> keys3(const std::string& third) const { return {k_meta, k_items, third}; }

  [[noreturn]] void gone() const { raise_gone(name, label); }
  StatusReader status() { return {misc_conn, misc_m, name, label}; }

  void open() {
    Args argv = keys3(k_dead);
    for (const std::string& a :
         {std::string(kQueueLayout), std::string(kind_name(kind)), type, std::to_string(options.max_items),
          std::to_string(options.capacity_bytes), std::to_string(options.max_message),
          std::to_string(options.visibility_timeout.count()), std::to_string(options.max_deliveries)})
      argv.push_back(a);
    std::lock_guard lock(misc_m);
    Reply r = eval(misc_conn, kOpenScript, std::move(argv), Deadline::never());
    if (reply_text(*r->element[0]) == "mismatch" && r->elements >= 3) {
      const std::string field(reply_text(*r->element[1]));
      const std::string stored(reply_text(*r->element[2]));
      raise_mismatch(name, label, field, stored, type);
    }
  }
  std::string type;
};

StreamQueue::StreamQueue(const Hub& hub, std::string_view name, QueueKind kind, std::string_view type,
                         const QueueOptions& options)
    : impl_(std::make_shared<Impl>(hub, name, kind, options)) {
  impl_->type = std::string(type);
  impl_->open();
}

QueueOutcome StreamQueue::put_many(std::span<const std::string_view> items, Deadline deadline) {
  Impl& q = *impl_;
  for (const std::string_view item : items)
    if (item.size() > q.options.max_message)
      throw MessageTooLarge(q.name, "ipckit: " + q.label + ": an item of " + std::to_string(item.size()) +
                                        " bytes exceeds its max_message of " + std::to_string(q.options.max_message) +
                                        " bytes; nothing was put (open the queue with a larger max_message)");
  std::lock_guard lock(q.put_m);
  if (q.put_pid != getpid()) {  // a forked child is another producer
    q.put_pid = getpid();
    q.producer = new_client_base() + "/" + std::to_string(++Impl::handles);
  }
  QueueOutcome total;
  auto backoff = 1ms;
  bool waited = false;
  std::size_t at = 0;
  while (at < items.size()) {
    const std::size_t n = std::min(kPutBatch, items.size() - at);
    Args argv = q.keys3(q.k_producers);
    argv.push_back(q.producer);
    argv.push_back(std::to_string(++q.put_seq));
    for (std::size_t i = 0; i < n; ++i) argv.emplace_back(items[at + i]);
    Reply r = q.eval(q.put_conn, kPutScript, std::move(argv), deadline);
    const std::string_view why = reply_text(*r->element[0]);
    const auto done = static_cast<std::size_t>(r->elements > 1 ? reply_integer(*r->element[1]) : 0);
    at += done;
    total.done += done;
    if (why == "closed") {
      total.miss = waited ? ipckit::detail::QueueMiss::ClosedWhileWaiting : ipckit::detail::QueueMiss::Closed;
      return total;
    }
    if (why == "full") {
      if (deadline.passed()) {
        total.miss = ipckit::detail::QueueMiss::Waited;
        return total;
      }
      // No room: look again soon (consumers do not signal room).
      waited = true;
      std::this_thread::sleep_for(deadline.nap(backoff, std::chrono::steady_clock::now()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
    } else {
      backoff = 1ms;
    }
  }
  return total;
}

QueueOutcome StreamQueue::get_many(Sink sink, void* ctx, std::size_t max, Deadline deadline) {
  Impl& q = *impl_;
  std::lock_guard lock(q.get_m);
  q.forked();
  q.counts.clear();
  if (max == 0) return {};
  const bool joinable = q.kind == QueueKind::Joinable;
  const auto scan = std::clamp<std::chrono::milliseconds>(q.options.visibility_timeout / 2, 10ms, 1000ms);
  for (;;) {
    if (q.stash.empty()) {
      Args argv = q.keys3(q.k_dead);
      argv.push_back(q.consumer);
      argv.push_back(std::to_string(max));
      argv.push_back(q.recover ? "1" : "0");
      argv.push_back(std::to_string(q.to_ack.size()));
      for (const std::string& id : q.to_ack) argv.push_back(id);
      const auto held_from = argv.size();
      if (q.recover)
        for (const std::string& id : q.held) argv.push_back(id);
      // A lost reply may have delivered items to us: the resend recovers them.
      const auto resend = [&](Args& a) {
        a[5] = "1";
        if (a.size() == held_from)
          for (const std::string& id : q.held) a.push_back(id);
      };
      q.recover = true;  // until a reply comes back
      Reply r = q.eval(q.get_conn, kGetScript, std::move(argv), deadline, resend);
      q.recover = false;
      q.to_ack.clear();
      const std::string_view what = reply_text(*r->element[0]);
      if (what == "closed") return {0, ipckit::detail::QueueMiss::Closed};
      if (what == "empty") {
        if (deadline.passed()) return {0, ipckit::detail::QueueMiss::Waited};
        // Sleep in the server until something is added after the last entry
        // (a put or a close marker), or the scan period passes.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.left());
        const auto block = std::max<std::chrono::milliseconds>(1ms, std::min(left, scan));
        Args xread{"XREAD",
                   "BLOCK",
                   std::to_string(block.count()),
                   "COUNT",
                   "1",
                   "STREAMS",
                   q.k_items,
                   std::string(r->elements > 1 ? reply_text(*r->element[1]) : "0-0")};
        (void)q.get_conn.call(xread, deadline, block);
        continue;
      }
      for (std::size_t i = 1; i + 3 <= r->elements; i += 3) {
        Entry e{std::string(reply_text(*r->element[i])), static_cast<std::uint32_t>(reply_integer(*r->element[i + 1])),
                std::string(reply_text(*r->element[i + 2]))};
        q.stash.push_back(std::move(e));
      }
      if (q.stash.empty()) continue;
    }
    std::size_t given = 0;
    while (given < max && !q.stash.empty()) {
      Entry e = std::move(q.stash.front());
      q.stash.pop_front();
      if (joinable)
        q.held.push_back(e.id);
      else
        q.to_ack.push_back(e.id);
      try {
        sink(ctx, e.bytes.data(), e.bytes.size());
      } catch (...) {
        // Dropped: acknowledged (a JoinableQueue's task is done), as a
        // shared-memory queue drops an item that does not decode.
        if (joinable) {
          q.held.pop_back();
          Args argv{q.k_meta, q.k_items, e.id};
          std::lock_guard m(q.misc_m);
          (void)q.eval(q.misc_conn, kTaskDoneScript, std::move(argv), Deadline::never(), {}, 2);
        }
        if (given > 0) return {given, {}};
        throw;
      }
      q.counts.push_back(e.deliveries);
      ++given;
    }
    return {given, {}};
  }
}

void StreamQueue::raise_put(const QueueOutcome& r, std::size_t count) const {
  const Impl& q = *impl_;
  const std::string of = count > 1 ? " (" + std::to_string(r.done) + " of " + std::to_string(count) + " put)" : "";
  switch (r.miss) {
    case ipckit::detail::QueueMiss::Closed:
    case ipckit::detail::QueueMiss::ClosedWhileWaiting:
      throw Closed(q.name, "ipckit: " + q.label + " is closed; nothing more can be put" + of);
    default:
      throw Full(q.name, "ipckit: " + q.label + " is full (max_items " + std::to_string(q.options.max_items) +
                             ", capacity_bytes " + std::to_string(q.options.capacity_bytes) + ")" + of +
                             "; wait longer, or let consumers catch up");
  }
}

void StreamQueue::raise_get(const QueueOutcome& r) const {
  const Impl& q = *impl_;
  if (r.miss == ipckit::detail::QueueMiss::Closed)
    throw Closed(q.name, "ipckit: " + q.label + " is closed and drained");
  throw Empty(q.name, "ipckit: " + q.label + " is empty; wait longer, or check that producers run");
}

void StreamQueue::ack() {
  Impl& q = *impl_;
  std::lock_guard lock(q.get_m);
  q.forked();
  if (q.to_ack.empty()) return;
  Args argv{"XACK", q.k_items, "ipckit"};
  for (const std::string& id : q.to_ack) argv.push_back(id);
  Args del{"XDEL", q.k_items};
  for (const std::string& id : q.to_ack) del.push_back(id);
  // Deleting an entry another consumer took over is harmless: its ack finds nothing.
  Reply r = q.get_conn.call(argv, Deadline::never());
  if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, q.label, "XACK");
  Reply d = q.get_conn.call(del, Deadline::never());
  q.to_ack.clear();
}

void StreamQueue::task_done() {
  Impl& q = *impl_;
  std::string id;
  {
    std::lock_guard lock(q.get_m);
    q.forked();
    if (q.held.empty())
      throw InvalidArgument(q.name, "ipckit: task_done() on " + q.label +
                                        " called more times than this handle got items (each get() is one task)");
    id = q.held.front();
    q.held.pop_front();
  }
  Args argv{q.k_meta, q.k_items, id};
  std::lock_guard lock(q.misc_m);
  (void)q.eval(q.misc_conn, kTaskDoneScript, std::move(argv), Deadline::never(), {}, 2);
}

bool StreamQueue::join(Deadline deadline) {
  auto backoff = 1ms;
  for (;;) {
    if (unfinished_tasks() == 0) return true;
    if (deadline.passed()) return false;
    std::this_thread::sleep_for(deadline.nap(backoff, std::chrono::steady_clock::now()));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
  }
}

void StreamQueue::close() { shutdown(false); }

void StreamQueue::shutdown(bool immediate) {
  Impl& q = *impl_;
  std::lock_guard lock(q.misc_m);
  (void)q.eval(q.misc_conn, kCloseScript, {q.k_meta, q.k_items, q.k_dead, immediate ? "1" : "0"}, Deadline::never());
}

std::size_t StreamQueue::qsize() const {
  return static_cast<std::size_t>(impl_->status().field(impl_->k_meta, "queued"));
}
bool StreamQueue::full() const { return impl_->status().full(impl_->k_meta, impl_->options); }
bool StreamQueue::closed() const { return impl_->status().field(impl_->k_meta, "closed") != 0; }
std::uint64_t StreamQueue::unfinished_tasks() const {
  return static_cast<std::uint64_t>(impl_->status().field(impl_->k_meta, "unfinished"));
}
std::uint64_t StreamQueue::dead_letters() const { return impl_->status().stream_length(impl_->k_dead); }

std::size_t StreamQueue::requeue_dead(std::size_t max) {
  Impl& q = *impl_;
  std::lock_guard lock(q.misc_m);
  Reply r =
      q.eval(q.misc_conn, kRequeueScript,
             {q.k_meta, q.k_items, q.k_dead, std::to_string(std::min<std::size_t>(max, 1 << 30))}, Deadline::never());
  if (reply_text(*r->element[0]) == "closed")
    throw Closed(q.name, "ipckit: " + q.label + " is closed; dead letters cannot go back into it");
  return static_cast<std::size_t>(reply_integer(*r->element[1]));
}

const std::vector<std::uint32_t>& StreamQueue::delivery_counts() const { return impl_->counts; }
const std::string& StreamQueue::label() const { return impl_->label; }
const std::string& StreamQueue::consumer() const { return impl_->consumer; }
std::size_t StreamQueue::max_message() const { return impl_->options.max_message; }

}  // namespace ipckit::redis::detail
