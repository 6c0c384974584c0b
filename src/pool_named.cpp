// pool_named.cpp — pools served by separate programs: the named segment,
// the client channels and worker records in it, serve_pool and close_pool.
#include <algorithm>
#include <string>

#include "ipckit/current_process.hpp"
#include "ipckit/pool.hpp"
#include "ipckit/value.hpp"
#include "ipckit/worker_local.hpp"
#include "pool_internal.hpp"

namespace ipckit {
namespace detail {
namespace {

// The geometry every process of a named pool must agree on, kept in its segment.
struct NamedPoolConfig {
  std::uint64_t max_pending;
  std::uint64_t max_message;
  std::uint32_t max_clients;
  std::uint32_t max_workers;
  bool operator==(const NamedPoolConfig&) const = default;
};

std::string segment_of(const std::string& name) { return "ipckit.pool." + name; }

std::string describe(const NamedPoolConfig& c) {
  return "max_pending " + std::to_string(c.max_pending) + ", max_message " + std::to_string(c.max_message) +
         ", max_clients " + std::to_string(c.max_clients) + ", max_workers " + std::to_string(c.max_workers);
}

NamedPoolConfig checked_config(const std::string& name, const NamedPoolOptions& o) {
  const auto bad = [&](const std::string& what) {
    throw InvalidArgument(name, "ipckit: named pool '" + name + "': " + what);
  };
  if (name.empty()) bad("a named pool needs a name; pass a non-empty one");
  if (o.max_pending == 0 || o.max_pending > (1u << 20)) bad("max_pending must be 1 to 1048576");
  if (o.max_message == 0) bad("max_message 0 would carry no task; use 1 or more");
  if (o.max_clients == 0 || o.max_clients > 256) bad("max_clients must be 1 to 256");
  if (o.max_workers == 0 || o.max_workers >= kSlotMaxWorkers)
    bad("max_workers must be 1 to " + std::to_string(kSlotMaxWorkers - 1));
  if (o.task_timeout.count() < 0) bad("a negative task_timeout; use 0 for none");
  return {o.max_pending, o.max_message, o.max_clients, o.max_workers};
}

// A dead client's channel, before the next client takes it: its results are
// dropped, and each of its slots moves to the next generation, so that its
// queued records find nothing to claim and its running tasks' results match
// no future.
void reset_channel(PoolSegment& shm, std::uint32_t c) {
  while (shm.results[c].try_get_view()) {
  }
  PoolSlot* first = shm.slots + std::size_t{c} * shm.per_channel;
  for (std::uint32_t i = 0; i < shm.per_channel; ++i) {
    std::uint32_t word = first[i].state.load(std::memory_order_acquire);
    while (slot_kind(word) != SlotKind::Free &&
           !first[i].state.compare_exchange_weak(word, slot_word(SlotKind::Free, 0, slot_gen(word) + 1))) {
    }
  }
}

// Takes a free worker record, or a dead worker's. A dead worker's tasks are
// settled by their clients, which look at the runner recorded in each slot;
// one it claimed without recording itself (killed in between) gets the dead
// worker's identity here, before this worker claims any task under the index.
unsigned claim_worker(PoolSegment& shm, const std::string& name, std::uint64_t me) {
  for (unsigned w = 0; w < shm.workers; ++w) {
    PoolWorkerRecord& rec = shm.worker_records[w];
    std::uint64_t seen = rec.owner.load();
    if ((seen != 0 && owner_alive(seen)) || !rec.owner.compare_exchange_strong(seen, me)) continue;
    if (seen != 0) {
      for (std::uint32_t i = 0; i < shm.all_slots(); ++i) {
        const std::uint32_t word = shm.slots[i].state.load(std::memory_order_acquire);
        std::uint64_t none = 0;
        if (slot_kind(word) == SlotKind::Running && slot_worker(word) == w)
          (void)shm.slots[i].runner.compare_exchange_strong(none, seen);
      }
      shm.counters->restarts.fetch_add(1);
    }
    rec.pid.store(owner_pid(me));
    rec.started_ns.store(monotonic_ns());
    rec.tasks.store(0);
    return w;
  }
  throw Full(name, "ipckit: named pool '" + name + "' has " + std::to_string(shm.workers) +
                       " workers serving it (its max_workers); stop one, or make the pool with a larger max_workers");
}

}  // namespace

PoolSegment open_named_pool(const std::string& name, const NamedPoolOptions& options) {
  const NamedPoolConfig mine = checked_config(name, options);
  const auto per_channel = static_cast<std::uint32_t>(mine.max_pending + mine.max_workers);
  Segment seg = Segment::open_or_create(
      segment_of(name), PoolSegment::bytes(mine.max_message, per_channel, mine.max_clients, mine.max_workers),
      PoolSegment::segment_options(mine.max_clients, mine.max_workers));
  const NamedPoolConfig found = seg.raw_value<NamedPoolConfig>("config", mine).get();
  if (found != mine)
    throw TypeMismatch(name, "ipckit: named pool '" + name + "' exists with " + describe(found) + ", not the " +
                                 describe(mine) +
                                 " asked for here; pass the same options in every program that serves or connects "
                                 "to it (or close_pool() it first)");
  return PoolSegment::bind(std::move(seg), mine.max_message, per_channel, mine.max_clients, mine.max_workers);
}

std::uint32_t claim_channel(PoolSegment& shm, const std::string& name, std::uint64_t me) {
  for (std::uint32_t c = 0; c < shm.channels; ++c) {
    std::uint64_t seen = shm.channel_records[c].owner.load();
    if ((seen != 0 && owner_alive(seen)) || !shm.channel_records[c].owner.compare_exchange_strong(seen, me)) continue;
    reset_channel(shm, c);
    return c;
  }
  throw Full(name, "ipckit: named pool '" + name + "' has " + std::to_string(shm.channels) +
                       " clients connected (its max_clients); shut one down, or make the pool with a larger "
                       "max_clients");
}

}  // namespace detail

void serve_pool(const std::string& name, const NamedPoolOptions& options) {
  detail::PoolSegment shm = detail::open_named_pool(name, options);
  const std::uint64_t me = detail::owner_word_of_self();
  const unsigned w = detail::claim_worker(shm, name, me);
  struct Release {  // the index is free again once this worker stops serving
    detail::PoolWorkerRecord& rec;
    std::uint64_t me;
    ~Release() {
      rec.pid.store(0);
      (void)rec.owner.compare_exchange_strong(me, 0);
    }
  } release{shm.worker_records[w], me};
  detail::set_pool_worker(true);  // current_process().pool_worker, as in a forked worker
  detail::WorkerLoop{.shm = shm, .index = w, .by_name = true, .runner = me, .stop = options.stop, .pool = name}.run();
  detail::run_worker_teardown();  // the worker_local values this program emplaced, the last first
}

bool close_pool(const std::string& name) {
  const std::string seg_name = detail::segment_of(name);
  if (!Segment::exists(seg_name)) return false;
  Segment seg = Segment::open(seg_name);
  const auto config = seg.raw_value<detail::NamedPoolConfig>("config").get();
  seg.byte_queue("tasks", detail::PoolSegment::tasks_options(config.max_message)).close();
  return Segment::remove(seg_name);
}

}  // namespace ipckit
