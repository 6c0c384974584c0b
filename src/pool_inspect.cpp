// A named pool's state from outside (ipckit/pool_inspect.hpp). The objects
// a named pool keeps (pool_named.cpp, pool_worker.cpp): "config" (its
// geometry), "tasks" (a byte queue) and "table" (slots channel after
// channel, then the workers' records, the counters and the channels'
// records, one 64-byte line each). Segment::inspect copies them; nothing
// here touches the live segment.
#include "ipckit/pool_inspect.hpp"

#include <algorithm>
#include <cstring>
#include <variant>
#include <vector>

#include "ipckit/inspect.hpp"
#include "pool_internal.hpp"

namespace ipckit {
namespace {

using detail::Line;

// pool_named.cpp's NamedPoolConfig, as its bytes lie in the "config" value.
struct ConfigBytes {
  std::uint64_t max_pending;
  std::uint64_t max_message;
  std::uint32_t max_clients;
  std::uint32_t max_workers;
};
static_assert(sizeof(ConfigBytes) == 24);

std::optional<ObjectInfo> find(const std::vector<ObjectInfo>& objects, const char* name, ObjectKind kind) {
  const auto it = std::find_if(objects.begin(), objects.end(), [&](const auto& o) { return o.name == name; });
  if (it == objects.end() || it->kind != kind) return std::nullopt;
  return *it;
}

ValueStats copy_of(const Segment& seg, const char* name) {
  const ObjectSnapshot snap = seg.inspect(name);
  const auto* v = std::get_if<ValueStats>(&snap.stats);
  if (v == nullptr) throw CorruptSegment(name, "segment '" + seg.name() + "': pool object '" + name + "' has no value");
  return *v;
}

[[noreturn]] void bad(const Segment& seg, const std::string& what) {
  throw CorruptSegment(seg.name(), "segment '" + seg.name() + "' looks like a named pool's, but " + what +
                                       "; no pool writes that (remove it with `ipckit rm`)");
}

// The table's copy, in lines aligned as the records are.
using Table = std::vector<Line>;

// One record of the table's copy, by line (the caller checked the table's size).
template <class Record>
const Record& record_at(const Table& table, std::size_t line) {
  static_assert(sizeof(Record) == sizeof(Line) && alignof(Record) == alignof(Line));
  return *reinterpret_cast<const Record*>(&table[line]);
}

struct Geometry {
  std::uint32_t per_channel = 0, channels = 0, workers = 0;
  [[nodiscard]] std::size_t slots() const { return std::size_t{per_channel} * channels; }
};

Geometry checked_geometry(const Segment& seg, const ConfigBytes& c, std::uint64_t table_lines) {
  if (c.max_workers == 0 || c.max_workers >= detail::kSlotMaxWorkers || c.max_clients == 0 || c.max_clients > 4096 ||
      c.max_pending == 0 || c.max_pending > (1u << 24))
    bad(seg, "its config (max_pending " + std::to_string(c.max_pending) + ", max_clients " +
                 std::to_string(c.max_clients) + ", max_workers " + std::to_string(c.max_workers) + ") is impossible");
  const Geometry g{static_cast<std::uint32_t>(c.max_pending + c.max_workers), c.max_clients, c.max_workers};
  if (table_lines != detail::PoolSegment::table_lines(g.per_channel, g.channels, g.workers))
    bad(seg, "its table has " + std::to_string(table_lines) + " lines, not the " +
                 std::to_string(detail::PoolSegment::table_lines(g.per_channel, g.channels, g.workers)) +
                 " its config needs");
  return g;
}

void read_workers(PoolSnapshot& out, const Table& table, const Geometry& g, std::vector<std::size_t>& at) {
  at.assign(g.workers, SIZE_MAX);
  for (unsigned w = 0; w < g.workers; ++w) {
    const auto& rec = record_at<detail::PoolWorkerRecord>(table, g.slots() + w);
    const std::uint64_t owner = rec.owner.load();
    if (owner == 0 || !detail::owner_alive(owner)) continue;
    at[w] = out.stats.per_worker.size();
    out.stats.per_worker.push_back({.index = w, .pid = detail::owner_pid(owner), .tasks_done = rec.tasks.load()});
  }
}

void read_slots(PoolSnapshot& out, const Table& table, const Geometry& g, const std::vector<std::size_t>& at) {
  const std::uint64_t now = detail::monotonic_ns();
  for (std::size_t i = 0; i < g.slots(); ++i) {
    const auto& slot = record_at<detail::PoolSlot>(table, i);
    const std::uint32_t word = slot.state.load();
    const auto kind = detail::slot_kind(word);
    if (static_cast<std::uint32_t>(kind) > static_cast<std::uint32_t>(detail::SlotKind::Finishing)) {
      out.corrupt = "slot " + std::to_string(i) + " has state word " + std::to_string(word);
      continue;
    }
    if (kind == detail::SlotKind::Queued) ++out.stats.pending;
    if (kind != detail::SlotKind::Running) continue;
    ++out.stats.running;
    const unsigned w = detail::slot_worker(word);
    if (w >= g.workers) {
      out.corrupt =
          "slot " + std::to_string(i) + " is run by worker " + std::to_string(w) + " of " + std::to_string(g.workers);
      continue;
    }
    if (at[w] == SIZE_MAX) continue;  // its worker died: the pool settles the task
    PoolWorkerStats& ws = out.stats.per_worker[at[w]];
    ws.task = slot.task.load();
    const std::uint64_t started = slot.started_ns.load();
    if (started != 0 && started <= now) ws.running_for = std::chrono::nanoseconds(now - started);
  }
}

}  // namespace

std::optional<PoolSnapshot> inspect_pool(const Segment& seg) {
  const auto objects = seg.objects();
  const auto config = find(objects, "config", ObjectKind::Value);
  const auto tasks = find(objects, "tasks", ObjectKind::Queue);
  const auto table = find(objects, "table", ObjectKind::Array);
  if (!config || !tasks || !table || config->elem_size != sizeof(ConfigBytes) || table->elem_size != sizeof(Line))
    return std::nullopt;
  const ValueStats cfg = copy_of(seg, "config");
  const ValueStats tab = copy_of(seg, "table");
  if (cfg.data.size() != sizeof(ConfigBytes) || tab.data.size() != tab.count * sizeof(Line))
    bad(seg, "its config or table is not the size its directory says");
  ConfigBytes c{};
  std::memcpy(&c, cfg.data.data(), sizeof c);
  const Geometry g = checked_geometry(seg, c, tab.count);
  PoolSnapshot out;
  out.max_pending = c.max_pending;
  out.max_message = c.max_message;
  out.max_clients = c.max_clients;
  out.max_workers = c.max_workers;
  Table lines(tab.count);
  std::memcpy(static_cast<void*>(lines.data()), tab.data.data(), tab.data.size());
  std::vector<std::size_t> at;
  read_workers(out, lines, g, at);
  read_slots(out, lines, g, at);
  const auto& counters = record_at<detail::PoolCounters>(lines, g.slots() + g.workers);
  out.stats.restarts = counters.restarts.load();
  out.stats.submitted = counters.submitted.load();
  out.stats.succeeded = counters.succeeded.load();
  out.stats.failed = counters.failed.load();
  out.stats.timed_out = counters.timed_out.load();
  out.stats.cancelled = counters.cancelled.load();
  out.stats.workers = out.stats.workers_alive = static_cast<unsigned>(out.stats.per_worker.size());
  for (std::uint32_t ch = 0; ch < g.channels; ++ch) {
    const std::uint64_t owner = record_at<detail::PoolChannel>(lines, g.slots() + g.workers + 1 + ch).owner.load();
    if (owner != 0 && detail::owner_alive(owner)) ++out.clients_alive;
  }
  return out;
}

}  // namespace ipckit
