// src/redis/priority_queue.cpp — PriorityStream: a Redis priority queue's
// engine (the scripts are in priority_scripts.cpp, the protocol in
// ipckit/redis/priority_queue.hpp). Built as StreamQueue is
// (stream_queue.cpp): one connection per side, the same resend and recovery.
#include "ipckit/redis/priority_queue.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "connection.hpp"
#include "ipckit/error.hpp"
#include "priority_scripts.hpp"
#include "queue_common.hpp"

namespace ipckit::redis::detail {
namespace {

using namespace std::chrono_literals;
using Args = Connection::Args;

constexpr std::uint64_t kSignBit = std::uint64_t{1} << 63;

const char* kind_name(QueueKind k) { return k == QueueKind::Joinable ? "joinable_priority" : "priority"; }

// The first 8 bytes of an id (priority_scripts.hpp): bytes that sort as the priorities do.
std::string priority_bytes(std::int64_t p) {
  std::uint64_t u = static_cast<std::uint64_t>(p) ^ kSignBit;
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

std::int64_t priority_of(std::string_view id) {
  std::uint64_t u = 0;
  for (std::size_t i = 0; i < 8 && i < id.size(); ++i) u = (u << 8) | static_cast<unsigned char>(id[i]);
  return static_cast<std::int64_t>(u ^ kSignBit);
}

struct Entry {
  std::string id;
  std::uint32_t deliveries = 1;
  std::string bytes;
};

}  // namespace

struct PriorityStream::Impl {
  Impl(const Hub& hub, std::string_view name_in, QueueKind k, std::string_view type_in, const QueueOptions& o)
      : state(hub.state()),
        name(checked_name(name_in)),
        label(std::string(k == QueueKind::Joinable ? "joinable priority queue '" : "priority queue '") + name +
              "' on " + state->url),
        type(type_in),
        kind(k),
        options(o),
        put_conn(state, label),
        get_conn(state, label),
        misc_conn(state, label) {
    consumer = state->client_base + "/p" + std::to_string(++handles);
    producer = consumer;
    pid = put_pid = getpid();
    const std::string base = "ipckit:{" + name + "}";
    for (const char* suffix : {"", ":ready", ":data", ":leases", ":deliv", ":dead", ":producers", ":wake", ":holds"})
      keys.push_back(base + suffix);
    options = checked_options(options, name, label);
  }

  // A handle used in a forked child: the child is another consumer; what the
  // parent got stays the parent's. Call with get_m held.
  void forked() {
    if (pid == getpid()) return;
    pid = getpid();
    consumer = new_client_base() + "/p" + std::to_string(++handles);
    to_ack.clear();
    held.clear();
    recover = false;
  }
  static inline std::atomic<std::uint64_t> handles{0};

  std::shared_ptr<const HubState> state;
  std::string name, label, type, consumer;
  int pid = 0;
  Args keys;  // priority_scripts.hpp's nine, in order
  QueueKind kind;
  QueueOptions options;

  std::mutex put_m;  // each side its own connection: a blocked get does not hold up puts
  Connection put_conn;
  std::uint64_t put_seq = 0;
  std::string producer;  // the name its puts are applied once under
  int put_pid = 0;

  std::mutex get_m;
  Connection get_conn;
  std::vector<std::string> to_ack;  // PriorityQueue: the last get's item, acknowledged by the next get
  std::deque<std::string> held;     // JoinablePriorityQueue: got, not yet task_done
  std::vector<std::uint32_t> counts;
  bool recover = false;  // a get's reply was lost: its resend (or the next gets) recover the items

  std::mutex misc_m;
  Connection misc_conn;

  Reply eval(Connection& c, const Script& s, const Args& args, Deadline d,
             const std::function<void(Args&)>& resend = {}) {
    Args argv = keys;
    argv.insert(argv.end(), args.begin(), args.end());
    Reply r = c.eval(s, kPriorityKeys, argv, d, resend);
    if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, label, std::string("the ") + s.name + " script");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->type != REDIS_REPLY_STRING)
      throw SystemError(name, "ipckit: " + label + ": unexpected reply to the " + s.name + " script");
    if (reply_text(*r->element[0]) == "gone") gone();
    return r;
  }
  ~Impl() {
    // A PriorityQueue's last item is done once its handle goes (see priority_queue.hpp).
    if (to_ack.empty() || pid != getpid()) return;
    try {
      (void)eval(get_conn, kPriorityAckScript, to_ack, Deadline::now());
    } catch (const Error&) {
      // Unreachable server: the item goes to another consumer after its lease.
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  [[noreturn]] void gone() const { raise_gone(name, label); }
  StatusReader status() { return {misc_conn, misc_m, name, label}; }

  void open() {
    const Args args{kQueueLayoutPriority,
                    kind_name(kind),
                    type,
                    std::to_string(options.max_items),
                    std::to_string(options.capacity_bytes),
                    std::to_string(options.max_message),
                    std::to_string(options.visibility_timeout.count()),
                    std::to_string(options.max_deliveries)};
    std::lock_guard lock(misc_m);
    Reply r = eval(misc_conn, kPriorityOpenScript, args, Deadline::never());
    if (reply_text(*r->element[0]) == "mismatch" && r->elements >= 3)
      raise_mismatch(name, label, std::string(reply_text(*r->element[1])), std::string(reply_text(*r->element[2])),
                     type);
  }
  static constexpr const char* kQueueLayoutPriority = "1";
};

PriorityStream::PriorityStream(const Hub& hub, std::string_view name, QueueKind kind, std::string_view type,
                               const QueueOptions& options)
    : impl_(std::make_shared<Impl>(hub, name, kind, type, options)) {
  impl_->open();
}

QueueOutcome PriorityStream::put(std::int64_t priority, std::string_view item, Deadline deadline) {
  Impl& q = *impl_;
  if (item.size() > q.options.max_message)
    throw MessageTooLarge(q.name, "ipckit: " + q.label + ": an item of " + std::to_string(item.size()) +
                                      " bytes exceeds its max_message of " + std::to_string(q.options.max_message) +
                                      " bytes; nothing was put (open the queue with a larger max_message)");
  std::lock_guard lock(q.put_m);
  if (q.put_pid != getpid()) {  // a forked child is another producer
    q.put_pid = getpid();
    q.producer = new_client_base() + "/p" + std::to_string(++Impl::handles);
  }
  // One sequence number for every try of this put: a resend after a lost
  // reply, or a try after Full, is applied at most once.
  Args args{q.producer, std::to_string(++q.put_seq), priority_bytes(priority), std::string(item)};
  auto backoff = 1ms;
  bool waited = false;
  for (;;) {
    Reply r = q.eval(q.put_conn, kPriorityPutScript, args, deadline);
    const std::string_view why = reply_text(*r->element[0]);
    if (why == "ok") return {1, {}};
    if (why == "closed")
      return {0, waited ? ipckit::detail::QueueMiss::ClosedWhileWaiting : ipckit::detail::QueueMiss::Closed};
    // Full: recorded under this sequence number, so the next try needs a new one.
    if (deadline.passed()) return {0, ipckit::detail::QueueMiss::Waited};
    waited = true;
    std::this_thread::sleep_for(deadline.nap(backoff, std::chrono::steady_clock::now()));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
    args[1] = std::to_string(++q.put_seq);
  }
}

QueueOutcome PriorityStream::get(Sink sink, void* ctx, std::int64_t* priority, Deadline deadline) {
  Impl& q = *impl_;
  std::lock_guard lock(q.get_m);
  q.forked();
  q.counts.clear();
  const bool joinable = q.kind == QueueKind::Joinable;
  const auto scan = std::clamp<std::chrono::milliseconds>(q.options.visibility_timeout / 2, 10ms, 1000ms);
  for (;;) {
    Args args{q.consumer, "1", q.recover ? "1" : "0", std::to_string(q.to_ack.size())};
    args.insert(args.end(), q.to_ack.begin(), q.to_ack.end());
    const std::size_t held_from = q.keys.size() + args.size();
    if (q.recover) args.insert(args.end(), q.held.begin(), q.held.end());
    // A lost reply may have delivered an item to us: the resend recovers it.
    const auto resend = [&](Args& a) {
      a[q.keys.size() + 2] = "1";
      if (a.size() == held_from) a.insert(a.end(), q.held.begin(), q.held.end());
    };
    q.recover = true;  // until a reply comes back
    Reply r = q.eval(q.get_conn, kPriorityGetScript, args, deadline, resend);
    q.to_ack.clear();
    const std::string_view what = reply_text(*r->element[0]);
    q.recover = what == "items+";  // more to recover: the next get goes on
    if (what == "closed") return {0, ipckit::detail::QueueMiss::Closed};
    if (what == "empty") {
      if (deadline.passed()) return {0, ipckit::detail::QueueMiss::Waited};
      // Sleep in the server until a put or close adds to the wake stream
      // after what the script saw, or the scan period passes.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.left());
      const auto block = std::max<std::chrono::milliseconds>(1ms, std::min(left, scan));
      Args xread{"XREAD",
                 "BLOCK",
                 std::to_string(block.count()),
                 "COUNT",
                 "1",
                 "STREAMS",
                 q.keys[7],
                 std::string(r->elements > 1 ? reply_text(*r->element[1]) : "0-0")};
      (void)q.get_conn.call(xread, deadline, block);
      continue;
    }
    if (r->elements < 4) continue;
    Entry e{std::string(reply_text(*r->element[1])), static_cast<std::uint32_t>(reply_integer(*r->element[2])),
            std::string(reply_text(*r->element[3]))};
    if (joinable)
      q.held.push_back(e.id);
    else
      q.to_ack.push_back(e.id);
    try {
      sink(ctx, e.bytes.data(), e.bytes.size());
    } catch (...) {
      // Dropped: acknowledged (a task done), as a shared-memory queue drops
      // an item that does not decode.
      if (joinable) {
        q.held.pop_back();
        std::lock_guard m(q.misc_m);
        (void)q.eval(q.misc_conn, kPriorityAckScript, {e.id}, Deadline::never());
      }
      throw;
    }
    if (priority != nullptr) *priority = priority_of(e.id);
    q.counts.push_back(e.deliveries);
    return {1, {}};
  }
}

void PriorityStream::raise_put(const QueueOutcome& r) const {
  const Impl& q = *impl_;
  switch (r.miss) {
    case ipckit::detail::QueueMiss::Closed:
    case ipckit::detail::QueueMiss::ClosedWhileWaiting:
      throw Closed(q.name, "ipckit: " + q.label + " is closed; nothing more can be put");
    default:
      throw Full(q.name, "ipckit: " + q.label + " is full (max_items " + std::to_string(q.options.max_items) +
                             ", capacity_bytes " + std::to_string(q.options.capacity_bytes) +
                             "); wait longer, or let consumers catch up");
  }
}

void PriorityStream::raise_get(const QueueOutcome& r) const {
  const Impl& q = *impl_;
  if (r.miss == ipckit::detail::QueueMiss::Closed)
    throw Closed(q.name, "ipckit: " + q.label + " is closed and drained");
  throw Empty(q.name, "ipckit: " + q.label + " is empty; wait longer, or check that producers run");
}

void PriorityStream::ack() {
  Impl& q = *impl_;
  std::lock_guard lock(q.get_m);
  q.forked();
  if (q.to_ack.empty()) return;
  // Finishing an item another consumer took over is harmless: its ack finds nothing.
  (void)q.eval(q.get_conn, kPriorityAckScript, q.to_ack, Deadline::never());
  q.to_ack.clear();
}

void PriorityStream::task_done() {
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
  std::lock_guard lock(q.misc_m);
  (void)q.eval(q.misc_conn, kPriorityAckScript, {id}, Deadline::never());
}

bool PriorityStream::join(Deadline deadline) {
  auto backoff = 1ms;
  for (;;) {
    if (unfinished_tasks() == 0) return true;
    if (deadline.passed()) return false;
    std::this_thread::sleep_for(deadline.nap(backoff, std::chrono::steady_clock::now()));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
  }
}

void PriorityStream::shutdown(bool immediate) {
  Impl& q = *impl_;
  std::lock_guard lock(q.misc_m);
  (void)q.eval(q.misc_conn, kPriorityCloseScript, {immediate ? "1" : "0"}, Deadline::never());
}

std::size_t PriorityStream::qsize() const {
  return static_cast<std::size_t>(impl_->status().field(impl_->keys[0], "queued"));
}
bool PriorityStream::full() const { return impl_->status().full(impl_->keys[0], impl_->options); }
bool PriorityStream::closed() const { return impl_->status().field(impl_->keys[0], "closed") != 0; }
std::uint64_t PriorityStream::unfinished_tasks() const {
  return static_cast<std::uint64_t>(impl_->status().field(impl_->keys[0], "unfinished"));
}
std::uint64_t PriorityStream::dead_letters() const { return impl_->status().stream_length(impl_->keys[5]); }

std::size_t PriorityStream::requeue_dead(std::size_t max) {
  Impl& q = *impl_;
  std::lock_guard lock(q.misc_m);
  Reply r = q.eval(q.misc_conn, kPriorityRequeueScript, {std::to_string(std::min<std::size_t>(max, 1 << 30))},
                   Deadline::never());
  if (reply_text(*r->element[0]) == "closed")
    throw Closed(q.name, "ipckit: " + q.label + " is closed; dead letters cannot go back into it");
  return static_cast<std::size_t>(reply_integer(*r->element[1]));
}

const std::vector<std::uint32_t>& PriorityStream::delivery_counts() const { return impl_->counts; }
const std::string& PriorityStream::label() const { return impl_->label; }
const std::string& PriorityStream::consumer() const { return impl_->consumer; }

}  // namespace ipckit::redis::detail
