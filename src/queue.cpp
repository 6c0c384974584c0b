// The byte ring behind Queue<T>, JoinableQueue<T> and ByteQueue, what it
// shares with the priority engine, and Segment::open_queue. See
// queue_core.hpp for who writes what and why one store publishes or frees a
// record.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "ipckit/detail/queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"
#include "side_lock.hpp"
#include "wait_source.hpp"

namespace ipckit::detail {
namespace {

constexpr std::uint64_t align8(std::uint64_t v) { return (v + 7) & ~std::uint64_t{7}; }
constexpr std::uint64_t pos_of(std::uint64_t word) { return word & kPosMask; }
constexpr std::uint64_t count_of(std::uint64_t word) { return word >> kPosBits; }
constexpr std::uint64_t pack(std::uint64_t count, std::uint64_t pos) {
  return ((count & kCountMask) << kPosBits) | (pos & kPosMask);
}

constexpr auto kNoTick = std::chrono::seconds(1);
// How long a producer facing a full ring waits for a stretch of room before
// it takes whatever room there is: within the wait's spinning phase, so that
// consumers are not made to wake a sleeper at every get meanwhile.
constexpr auto kStretchWait = std::chrono::microseconds(40);

// Where consumers wait for items, and producers for room (side_lock.hpp).
QueueWaiter consumers_waiter(QueueState& s) { return {s.data.seq, s.data.sleepers, s.data.seen}; }
QueueWaiter producers_waiter(QueueState& s) { return {s.space.seq, s.space.sleepers, s.space.seen}; }

// Copies a record's piece into the ring. Items of 16 to 128 bytes (most) are
// copied inline, 16 bytes a step with the last step overlapping: the call
// into the library's memcpy costs about as much as copying them.
[[gnu::always_inline]] inline void copy_in(char* to, std::string_view piece) noexcept {
  const std::size_t n = piece.size();
  if (n >= 16 && n <= 128) {
    for (std::size_t i = 0; i + 16 < n; i += 16) __builtin_memcpy(to + i, piece.data() + i, 16);
    __builtin_memcpy(to + n - 16, piece.data() + n - 16, 16);
  } else if (n != 0) {  // an empty view's data() may be null
    std::memcpy(to, piece.data(), n);
  }
}

// Why a side lock was not taken, as a put's or get's miss.
QueueMiss side_miss(const SideLock& lock) {
  return lock.miss() == SideLockMiss::Holder ? QueueMiss::Holder : QueueMiss::Waiter;
}

bool possible(const QueueGeometry& g) {
  return g.capacity >= 64 && g.capacity <= kMaxQueueCapacity && (g.capacity & (g.capacity - 1)) == 0 &&
         g.max_message <= g.capacity / 2 - kRecordHeader;
}

// "; <who> held <lock_name> past the deadline (...)": names the holder of a
// queue's lock that kept a call from it.
std::string holder_blame(const LockState& lock, const char* lock_name) {
  return "; " + describe_side_lock_holder(lock) + ", held " + lock_name +
         " past the deadline (a stopped process keeps its locks: continue or kill it)";
}

}  // namespace

void raise_too_large(const Label& who, std::size_t bytes, std::uint64_t max_message, const char* larger,
                     const std::string& more) {
  raise<MessageTooLarge>(who,
                         "an item of " + std::to_string(bytes) + " bytes exceeds its max_message of " +
                             std::to_string(max_message) + " bytes" + more,
                         std::string("split it, or create the queue with a larger ") + larger);
}

void raise_decode_error(const Label& who, std::size_t bytes, const std::exception_ptr& failure) {
  std::string why = "unknown error";
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
  }
  raise<DecodeError>(who, "an item of " + std::to_string(bytes) + " bytes did not decode (" + why + ") and was dropped",
                     "every process must use the same item type and serialize()");
}

void raise_missed(const Label& who, const QueueSide& side, QueueMiss miss, const std::string& full,
                  const std::string& so_far) {
  std::string says;
  const bool closed = miss == QueueMiss::Closed || miss == QueueMiss::ClosedWhileWaiting;
  switch (miss) {
    case QueueMiss::Holder:
      says = std::string(side.put ? "has room, but the put" : "holds items, but the get") + " gave up at its deadline" +
             holder_blame(side.lock, side.lock_name);
      break;
    case QueueMiss::Waiter:
      says = side.put ? "is full (another producer is waiting for room)"
                      : "is empty (another consumer is waiting for an item)";
      break;
    case QueueMiss::Closed:
      says = side.put ? "is closed; nothing more can be put" : "is closed and drained";
      break;
    case QueueMiss::ClosedWhileWaiting:
      says = "was closed while waiting for room";
      break;
    default:
      says = side.put ? "is full" + full + "; consume faster, wait longer or make it larger" : "is empty";
  }
  if (closed) raise_about<Closed>(who, says + so_far);
  if (side.put) raise_about<Full>(who, says + so_far);
  raise_about<Empty>(who, says + so_far);
}

void tasks_done(TaskLedger& l, std::uint64_t published, const Label& who) {
  if (!ledger_task_done(l, this_process(), published))
    raise<InvalidArgument>(who,
                           "task_done() was called more times than items were put (every task is done and no "
                           "abandoned one is left to settle)",
                           "call it once for each item got");
  wake_if_sleeping(l.join_seq, l.join_sleepers, INT_MAX);
}

QueueCore::QueueCore(QueueState* s, std::shared_ptr<const void> keepalive, Label label, const QueueGeometry& geometry)
    : s_(s), keep_(std::move(keepalive)), label_(std::move(label)), geo_(geometry) {
  if (!possible(geo_))
    throw_corrupt("its geometry (capacity " + std::to_string(geo_.capacity) + ", max_message " +
                  std::to_string(geo_.max_message) + ") is not one a queue can have");
}

QueueOutcome QueueCore::put_many(const Record* records, std::size_t count, Deadline deadline) {
  if (count == 0) return {};
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = records[i].size();
    if (n > geo_.max_message)
      raise_too_large(label_, n, geo_.max_message, "max_message / capacity_bytes",
                      i != 0 ? " (nothing of this put_many was put)" : "");
  }
  SideLock lock(s_->put.lock, deadline, label_, RoomFor{this, records[0].size()});
  if (!lock.held()) return {0, side_miss(lock)};
  if (closed()) return {0, QueueMiss::Closed};
  PutCursor c = put_cursor();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = records[i].size();
    QueueMiss miss = QueueMiss::None;
    char* at = make_room(c, n, deadline, miss);
    if (at == nullptr) return {i, miss};
    copy_in(at + kRecordHeader, records[i].first);
    copy_in(at + kRecordHeader + records[i].first.size(), records[i].second);
    append(c, at, n);
  }
  if (!publish(c)) return {count, QueueMiss::None};
  lock.unlock();
  fence_after_unlock();
  consumers_waiter(*s_).wake();
  return {count, QueueMiss::None};
}

QueueOutcome QueueCore::lend(std::size_t bytes, Deadline deadline, Lent& out) {
  if (bytes > geo_.max_message) raise_too_large(label_, bytes, geo_.max_message, "max_message / capacity_bytes");
  SideLock lock(s_->put.lock, deadline, label_, RoomFor{this, bytes});
  if (!lock.held()) return {0, side_miss(lock)};
  if (closed()) return {0, QueueMiss::Closed};
  PutCursor c = put_cursor();
  QueueMiss miss = QueueMiss::None;
  char* at = make_room(c, bytes, deadline, miss);
  if (at == nullptr) return {0, miss};
  lock.keep_held();  // until publish_lent / drop_lent
  out = {at + kRecordHeader, bytes, c.tpos, c.tcount};
  return {1, QueueMiss::None};
}

void QueueCore::publish_lent(const Lent& lent, std::size_t used) noexcept {
  PutCursor c{lent.tpos, lent.tcount, lent.tpos};
  append(c, lent.at - kRecordHeader, used);
  publish(c);
  unlock_owned(s_->put.lock);
  fence_after_unlock();
  consumers_waiter(*s_).wake();
}

void QueueCore::drop_lent() noexcept { unlock_owned(s_->put.lock); }

bool QueueCore::holds_put_side() const noexcept { return owned_by(s_->put.lock, this_thread()); }
bool QueueCore::holds_get_side() const noexcept { return owned_by(s_->get.lock, this_thread()); }

// A producer holding the lock waits for room only when the queue cannot take
// its record; with room for two records of this size, that is not it.
bool QueueCore::RoomFor::operator()() const noexcept {
  const std::uint64_t rec = align8(kRecordHeader + bytes);
  return q->bytes_used() + 4 * rec <= q->geo_.capacity &&
         (q->geo_.max_items == 0 || q->qsize() + 2 <= q->geo_.max_items);
}

[[gnu::always_inline]] inline QueueCore::PutCursor QueueCore::put_cursor() const {
  const std::uint64_t t = s_->put.pos.load(std::memory_order_relaxed);  // only producers write it, one at a time
  // Records start 8-aligned, so every header and skip marker lies inside the ring.
  if ((pos_of(t) & 7) != 0) throw_corrupt("its tail position " + std::to_string(pos_of(t)) + " is not 8-aligned");
  return {pos_of(t), count_of(t), pos_of(t)};
}

// The one store that makes every record written so far visible. Sleeping
// consumers are looked for after a full barrier (the unlock's, or one's own).
[[gnu::always_inline]] inline bool QueueCore::publish(PutCursor& c) noexcept {
  if (c.published == c.tpos) return false;
  s_->put.pos.store(pack(c.tcount, c.tpos), std::memory_order_release);
  c.published = c.tpos;
  return true;
}

[[gnu::always_inline]] inline void QueueCore::append(PutCursor& c, char* at, std::size_t n) noexcept {
  const std::uint32_t header[2] = {static_cast<std::uint32_t>(n), 0};
  std::memcpy(at, header, sizeof header);
  c.tpos += align8(kRecordHeader + n);
  c.tcount = (c.tcount + 1) & kCountMask;
}

// The fast path: room (as last seen) and no wrap. Inlined into put and lend.
[[gnu::always_inline]] inline char* QueueCore::make_room(PutCursor& c, std::size_t n, Deadline deadline,
                                                         QueueMiss& miss) {
  const std::uint64_t cap = geo_.capacity;
  const std::uint64_t rec = align8(kRecordHeader + n);
  const std::uint64_t off = c.tpos & (cap - 1);
  const std::uint64_t h = s_->put.peer_cache;
  const std::uint64_t used = (c.tpos - pos_of(h)) & kPosMask;
  const std::uint64_t items = (c.tcount - count_of(h)) & kCountMask;
  if (rec <= cap - off && used <= cap && used + rec <= cap && (geo_.max_items == 0 || items < geo_.max_items))
      [[likely]]
    return ring() + off;
  return make_room_slowly(c, n, deadline, miss);
}

char* QueueCore::make_room_slowly(PutCursor& c, std::size_t n, Deadline deadline, QueueMiss& miss) {
  const std::uint64_t cap = geo_.capacity;
  const std::uint64_t max_items = geo_.max_items;
  const std::uint64_t rec = align8(kRecordHeader + n);
  std::uint64_t off = c.tpos & (cap - 1);
  const std::uint64_t contiguous = cap - off;
  const std::uint64_t need = rec <= contiguous ? rec : contiguous + rec;  // a record never straddles the end
  // Positions further apart than the ring is long cannot be: that ends any
  // wait (true), to be reported below.
  bool torn = false;
  const auto room_for = [&](std::uint64_t bytes) {
    const std::uint64_t h = s_->put.peer_cache;
    const std::uint64_t used = (c.tpos - pos_of(h)) & kPosMask;
    if (used > cap) return torn = true;
    const std::uint64_t items = (c.tcount - count_of(h)) & kCountMask;
    return used + bytes <= cap && (max_items == 0 || items < max_items);
  };
  if (!room_for(need)) {
    // What is written goes out before we wait for room, and the consumers
    // are woken even if this put wrote nothing yet: a producer killed
    // between publishing and waking them may have left them asleep (or a
    // wait handle unrung) on a full ring.
    publish(c);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    consumers_waiter(*s_).wake();
    // Look at the consumers' position only when the cached one says full:
    // reading it every time would pull their cache line over for each put.
    // A full ring first waits (briefly) for a stretch of room, not one
    // record's: writing each record into the bytes the consumer has just
    // freed would share cache lines with the records it is reading, both
    // sides paying a line transfer per record. Then any room will do.
    const std::uint64_t stretch = std::max(need, std::min<std::uint64_t>(cap / 8, std::uint64_t{16} * 1024));
    QueueWaiter waiter = producers_waiter(*s_);
    const auto wait_room = [&](std::uint64_t bytes, Deadline until) {
      return wait_for_change(
          waiter.seq, waiter.sleepers,
          [&] {
            waiter.about_to_look();
            s_->put.peer_cache = s_->get.pos.load(std::memory_order_acquire);
            return room_for(bytes) || closed();
          },
          until, kNoTick, [] {}, WaitOp::Put);
    };
    if (!wait_room(stretch, std::min(deadline, Deadline::after(kStretchWait))) && !wait_room(need, deadline)) {
      miss = QueueMiss::Waited;
      return nullptr;
    }
    if (!room_for(need)) {
      miss = QueueMiss::ClosedWhileWaiting;
      return nullptr;
    }
  }
  if (torn)
    throw_corrupt("its producers' position is " + std::to_string((c.tpos - pos_of(s_->put.peer_cache)) & kPosMask) +
                  " bytes past its consumers' in a ring of " + std::to_string(cap));
  char* r = ring();
  if (need != rec) {
    const std::uint32_t skip = kSkipMarker;
    std::memcpy(r + off, &skip, sizeof skip);
    c.tpos += contiguous;
    off = 0;
  }
  return r + off;
}

void QueueCore::raise_put(const QueueOutcome& outcome, std::size_t count) const {
  const std::string so_far = outcome.done == 0 ? ""
                                               : " (" + std::to_string(outcome.done) + " of " + std::to_string(count) +
                                                     " items of this put_many were put)";
  raise_missed(label_, {true, s_->put.lock, "the producers' lock"}, outcome.miss,
               " (" + std::to_string(qsize()) + " items, " + std::to_string(bytes_used()) + " bytes)", so_far);
}

QueueOutcome QueueCore::get_many(ReadFn read, void* ctx, std::size_t max, Deadline deadline) {
  if (max == 0) return {};
  SideLock lock(s_->get.lock, deadline, label_, ItemsFor{this});
  const QueueMiss miss = lock.held() ? await_data(lock, deadline) : side_miss(lock);
  if (miss != QueueMiss::None) return {0, miss};
  std::exception_ptr failure;
  std::uint32_t failed_len = 0;
  const std::size_t got = take_locked(read, ctx, max, failure, failed_len);
  // Sleeping producers are looked for after the unlock's full barrier.
  lock.unlock();
  fence_after_unlock();
  producers_waiter(*s_).wake();
  if (failure) {
    if (geo_.joinable) task_done();  // the caller never got this task
    raise_decode_error(label_, failed_len, failure);
  }
  return {got, QueueMiss::None};
}

QueueOutcome QueueCore::view_first(Deadline deadline, Viewed& out, std::size_t exact) {
  SideLock lock(s_->get.lock, deadline, label_, ItemsFor{this});
  const QueueMiss miss = lock.held() ? await_data(lock, deadline) : side_miss(lock);
  if (miss != QueueMiss::None) return {0, miss};
  const Located at = locate(pos_of(checked_head()));
  if (!at.ok) throw_bad_record(at);
  if (exact != 0 && at.len != exact) {
    lock.keep_held();
    release_viewed();
    if (geo_.joinable) task_done();  // the caller never got this task
    raise_decode_error(label_, at.len,
                       std::make_exception_ptr(std::runtime_error("a view of an item of " + std::to_string(exact) +
                                                                  " bytes found one of " + std::to_string(at.len) +
                                                                  ": every process must use the same item type")));
  }
  lock.keep_held();  // until release_viewed / keep_viewed
  out = {ring() + at.off + kRecordHeader, at.len};
  return {1, QueueMiss::None};
}

void QueueCore::release_viewed() {
  std::exception_ptr none;
  std::uint32_t len = 0;
  (void)take_locked(nullptr, nullptr, 1, none, len);  // frees it (a joinable queue's task leased as by get)
  keep_viewed();
}

void QueueCore::keep_viewed() noexcept {
  unlock_owned(s_->get.lock);
  fence_after_unlock();
  producers_waiter(*s_).wake();
}

// A consumer holding the lock waits for data only when the queue is empty;
// with two or more items queued, one is left for us.
bool QueueCore::ItemsFor::operator()() const noexcept { return q->qsize() >= 2; }

[[gnu::always_inline]] inline QueueMiss QueueCore::await_data(const SideLock& lock, Deadline deadline) {
  if (!lock.took_over()) [[likely]] {
    const std::uint64_t head = pos_of(s_->get.pos.load(std::memory_order_relaxed));  // only consumers write it
    if (pos_of(s_->get.peer_cache) != head) return QueueMiss::None;
    s_->get.peer_cache = s_->put.pos.load(std::memory_order_acquire);  // the tail moved since the last look?
    if (pos_of(s_->get.peer_cache) != head) return QueueMiss::None;
  }
  return await_data_slowly(lock, deadline);
}

QueueMiss QueueCore::await_data_slowly(const SideLock& lock, Deadline deadline) {
  if (lock.took_over()) recover_locked();
  // Only consumers write the head, one at a time.
  const auto has_data = [&] {
    return pos_of(s_->get.peer_cache) != pos_of(s_->get.pos.load(std::memory_order_relaxed));
  };
  if (has_data()) return QueueMiss::None;
  QueueWaiter waiter = consumers_waiter(*s_);
  const auto ready = [&] {
    waiter.about_to_look();
    s_->get.peer_cache = s_->put.pos.load(std::memory_order_acquire);
    return has_data() || closed();
  };
  // A joinable queue's waiting consumer holds the lock that reclaiming a
  // dead consumer's tasks needs, so it does that while it waits.
  const bool joinable = geo_.joinable;
  if (!wait_for_change(
          waiter.seq, waiter.sleepers, ready, deadline, joinable ? kLivenessInterval : kNoTick,
          [&] {
            if (joinable) reclaim_dead_consumers();
          },
          WaitOp::Get))
    return QueueMiss::Waited;
  return has_data() ? QueueMiss::None : QueueMiss::Closed;
}

bool QueueCore::await_items(Deadline deadline) {
  QueueWaiter waiter = consumers_waiter(*s_);
  const auto ready = [&] {
    waiter.about_to_look();
    return qsize() != 0 || closed();
  };
  if (!wait_for_change(
          waiter.seq, waiter.sleepers, ready, deadline, kNoTick, [] {}, WaitOp::Get))
    return false;
  // A producer wakes one sleeper per change it sees: when records came
  // faster than the sleepers woke, pass the wake on for the second one.
  if (qsize() >= 2) waiter.wake();
  return true;
}

void QueueCore::raise_get(const QueueOutcome& outcome) const {
  raise_missed(label_, {false, s_->get.lock, "the consumers' lock"}, outcome.miss, "");
}

std::size_t QueueCore::take_locked(ReadFn read, void* ctx, std::size_t max, std::exception_ptr& failure,
                                   std::uint32_t& failed_len) {
  const bool joinable = geo_.joinable;
  const std::uint64_t h = checked_head();
  std::uint64_t hpos = pos_of(h);
  std::uint64_t hcount = count_of(h);
  const auto has_data = [&] { return pos_of(s_->get.peer_cache) != hpos; };
  // A joinable queue leases each task to this process around its free (see
  // task_ledger.hpp), so that its death at any instant is accounted for: one
  // head store per record. A plain queue frees the whole batch with one
  // store; killed before it, every record of the batch stays queued.
  const int lease = joinable ? ledger_lease(s_->tasks, this_process()) : -1;
  const auto free_through = [&] {
    if (lease >= 0) ledger_begin_get(s_->tasks, lease, hcount);
    s_->get.pos.store(pack(hcount, hpos), std::memory_order_release);
    if (lease >= 0) ledger_end_get(s_->tasks, lease);
  };
  std::size_t got = 0;
  while (got < max) {
    if (!has_data()) {
      s_->get.peer_cache = s_->put.pos.load(std::memory_order_acquire);
      if (!has_data()) break;
    }
    const Located at = locate(hpos);
    if (!at.ok) {
      if (got != 0) break;  // hand over what was read; the next get reports it
      throw_bad_record(at);
    }
    if (read != nullptr) {
      try {
        read(ctx, got, ring() + at.off + kRecordHeader, at.len);
      } catch (...) {
        // A record that does not decode ends the batch. Alone, it is dropped
        // and reported; after others, it stays queued for the next get.
        if (got != 0) break;
        failure = std::current_exception();
        failed_len = at.len;
      }
    }
    hpos = at.pos + at.rec;
    hcount = (hcount + 1) & kCountMask;
    if (failure) break;
    ++got;
    if (joinable) free_through();
  }
  if (!joinable || failure) free_through();
  return got;
}

[[gnu::always_inline]] inline std::uint64_t QueueCore::checked_head() const {
  const std::uint64_t h = s_->get.pos.load(std::memory_order_relaxed);  // only consumers write it, one at a time
  if ((pos_of(h) & 7) != 0) throw_corrupt("its head position " + std::to_string(pos_of(h)) + " is not 8-aligned");
  return h;
}

// Every value read from the ring or the positions is checked before it
// indexes anything: the record at `hpos` (after a skip marker, if any) must
// lie inside the ring and before the tail as last seen (get.peer_cache).
[[gnu::always_inline]] inline QueueCore::Located QueueCore::locate(std::uint64_t hpos) const noexcept {
  const std::uint64_t cap = geo_.capacity;
  const char* r = ring();
  const std::uint64_t tpos = pos_of(s_->get.peer_cache);
  Located at{hpos, hpos & (cap - 1), 0, 0, 0, false};  // off 8-aligned: a header fits before the end
  std::memcpy(&at.len, r + at.off, sizeof at.len);
  if (at.len == kSkipMarker) {
    at.pos += cap - at.off;
    at.off = 0;
    std::memcpy(&at.len, r, sizeof at.len);
  }
  at.rec = align8(kRecordHeader + std::uint64_t{at.len});
  at.queued = (tpos - hpos) & kPosMask;
  const std::uint64_t ahead = (tpos - at.pos) & kPosMask;
  at.ok =
      at.len <= geo_.max_message && at.off + at.rec <= cap && at.queued <= cap && ahead >= at.rec && ahead <= at.queued;
  return at;
}

void QueueCore::throw_bad_record(const Located& at) const {
  throw_corrupt("it holds a record that does not fit its ring (" + std::to_string(at.len) + " bytes at offset " +
                std::to_string(at.off) + ", " + std::to_string(at.queued) + " bytes queued in a ring of " +
                std::to_string(geo_.capacity) + ")");
}

void QueueCore::discard_locked() {
  s_->closed.fetch_or(kQueueClosed | kQueueDiscard, std::memory_order_seq_cst);
  std::exception_ptr none;
  std::uint32_t len = 0;
  const std::size_t discarded = take_locked(nullptr, nullptr, SIZE_MAX, none, len);
  if (!geo_.joinable || discarded == 0) return;
  // This process got them (its lease counts them outstanding): done, as
  // Python's shutdown does. Killed before, they count as abandoned.
  for (std::size_t i = 0; i < discarded; ++i) (void)ledger_task_done(s_->tasks, this_process(), published());
  wake_if_sleeping(s_->tasks.join_seq, s_->tasks.join_sleepers, INT_MAX);
}

void QueueCore::recover_locked() {
  if (geo_.joinable) ledger_settle(s_->tasks, count_of(s_->get.pos.load(std::memory_order_acquire)));
  if ((s_->closed.load(std::memory_order_acquire) & kQueueDiscard) != 0) discard_locked();
}

void QueueCore::shutdown(bool immediate) {
  close();
  if (!immediate) return;
  // Like put() and get() without a timeout, this waits for the locks (a dead
  // holder's is taken over). First every producer past its closed check
  // finishes its put: after that nothing more is published.
  {
    SideLock producers(s_->put.lock, Deadline::never(), label_, [] { return false; });
  }
  {
    SideLock consumers(s_->get.lock, Deadline::never(), label_, [] { return false; });
    if (consumers.took_over()) recover_locked();
    discard_locked();
  }
  close_queue(*s_, kQueueClosed);  // producers and consumers look again: Closed
}

std::uint64_t QueueCore::published() const noexcept { return count_of(s_->put.pos.load(std::memory_order_acquire)); }

std::size_t QueueCore::qsize() const noexcept {
  return (count_of(s_->put.pos.load(std::memory_order_acquire)) -
          count_of(s_->get.pos.load(std::memory_order_acquire))) &
         kCountMask;
}

std::size_t QueueCore::bytes_used() const noexcept {
  return (pos_of(s_->put.pos.load(std::memory_order_acquire)) - pos_of(s_->get.pos.load(std::memory_order_acquire))) &
         kPosMask;
}

WaitHandle QueueCore::items_handle() const {
  return shared_word_handle(
      s_->data.seq, s_->data.sleepers, ArmKind::Sleepers, [core = *this] { return core.qsize() != 0 || core.closed(); },
      keep_, label_, "items of ");
}

WaitHandle QueueCore::room_handle() const {
  return shared_word_handle(
      s_->space.seq, s_->space.sleepers, ArmKind::Sleepers, [core = *this] { return !core.full() || core.closed(); },
      keep_, label_, "room in ");
}

bool QueueCore::full() const noexcept {
  if (geo_.max_items != 0 && qsize() >= geo_.max_items) return true;
  return bytes_used() + kRecordHeader > geo_.capacity;
}

bool QueueCore::join(Deadline deadline) {
  return tasks_join(
      s_->tasks, deadline, [&] { return published(); },
      [&] {
        // Tasks of consumers that died before task_done() will never be done:
        // count them finished (abandoned_tasks() tells how many). If a consumer
        // holds the lock, it does this while it waits.
        SideLock lock(s_->get.lock, Deadline::now(), label_, [] { return false; });
        if (!lock.held()) return;
        if (lock.took_over()) recover_locked();
        reclaim_dead_consumers();
      });
}

void QueueCore::reclaim_dead_consumers() noexcept {
  if (ledger_reclaim_dead(s_->tasks) != 0) wake_if_sleeping(s_->tasks.join_seq, s_->tasks.join_sleepers, INT_MAX);
}

void check_own_side(const QueueCore* core, bool held, const char* what) {
  if (core == nullptr)
    throw InvalidArgument("", "",
                          std::string("ipckit: ") + what +
                              " on an empty loan or view (default-made, moved from, or already published, "
                              "abandoned, released or kept); take a new one from the queue");
  if (!held)
    raise<NotOwner>(core->label(), std::string(what) + " from a thread that does not hold this loan or view",
                    "a loan or view belongs to the thread that took it: finish it there");
}

void raise_publish_past(const QueueCore& core, std::size_t used, std::size_t size) {
  raise<InvalidArgument>(core.label(),
                         "publish(" + std::to_string(used) + ") on a loan of " + std::to_string(size) + " bytes",
                         "publish at most the bytes loaned");
}

void check_capacity(const Label& who, const QueueOptions& options) {
  if (options.capacity_bytes < 64 || options.capacity_bytes > kMaxQueueCapacity)
    raise<InvalidArgument>(who, "capacity_bytes " + std::to_string(options.capacity_bytes) + " is out of range",
                           "use 64 bytes to 128 MiB");
}

void throw_wrong_size(std::size_t got, std::size_t want, const char* type) {
  throw std::runtime_error("a record of " + std::to_string(got) + " bytes cannot hold an item of type " + type + " (" +
                           std::to_string(want) + " bytes)");
}

}  // namespace ipckit::detail

namespace ipckit {

detail::QueueCore Segment::open_queue(std::string_view name, ObjectKind kind, const char* type_name,
                                      const QueueOptions& options) {
  const detail::Label who = label_of(kind, name);
  detail::check_capacity(who, options);
  std::uint64_t capacity = 64;
  while (capacity < options.capacity_bytes) capacity <<= 1;
  // A record (8-byte header + payload, padded) must fit twice over: one may
  // be skipped at the ring's end to keep the next contiguous.
  const std::uint64_t largest = capacity / 2 - detail::kRecordHeader;
  const std::uint64_t max_message = options.max_message == 0 ? capacity / 4 : options.max_message;
  if (max_message > largest)
    detail::raise<InvalidArgument>(
        who,
        "max_message " + std::to_string(max_message) + " cannot fit a ring of " + std::to_string(capacity) + " bytes",
        "use at most " + std::to_string(largest) + " or a larger capacity_bytes");
  const detail::QueueGeometry geometry{capacity, max_message, options.max_items, kind == ObjectKind::JoinableQueue};
  auto spec =
      detail::ObjectSpec{kind, type_name, 0, 1, capacity, detail::kQueueLayout, sizeof(detail::QueueState) + capacity};
  spec.init = [](void* body, const void* arg) {
    const auto& g = *static_cast<const detail::QueueGeometry*>(arg);
    auto* q = static_cast<detail::QueueState*>(body);
    q->capacity = g.capacity;
    q->max_message = g.max_message;
    q->max_items = g.max_items;
    q->joinable = g.joinable ? 1 : 0;
  };
  spec.init_arg = &geometry;
  auto* q = static_cast<detail::QueueState*>(find_or_create(name, spec));
  if (q->capacity != capacity || q->max_message != max_message || q->max_items != options.max_items)
    detail::raise_about<TypeMismatch>(who, "was created with max_message " + std::to_string(q->max_message) +
                                               " and max_items " + std::to_string(q->max_items) + ", not " +
                                               std::to_string(max_message) + " and " +
                                               std::to_string(options.max_items) + "; open it with its options");
  return detail::SegmentAccess::make<detail::QueueCore>(q, keepalive(), who, geometry);
}

detail::QueueCore detail::SegmentAccess::open_queue(Segment& seg, std::string_view name, ObjectKind kind,
                                                    const char* type_name, const QueueOptions& options) {
  return seg.open_queue(name, kind, type_name, options);
}

}  // namespace ipckit
