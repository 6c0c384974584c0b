// ipckit/inspect.hpp — a snapshot of any object of a segment, by name.
//
//   auto seg = ipckit::Segment::open("demo");
//   for (const auto& o : seg.objects()) {
//     const ipckit::ObjectSnapshot snap = seg.inspect(o.name);
//     if (const auto* q = std::get_if<ipckit::QueueStats>(&snap.stats)) std::cout << q->items << "\n";
//   }
//
// `Segment::inspect(name)` finds the object, checks its directory entry and
// its size, and returns what the object's own `stats()` returns
// (ipckit/stats.hpp), without knowing the object's C++ type: this is what
// `ipckit inspect` prints. It only observes (no lock taken, no wait). It
// throws NotFound when there is no such object, and CorruptSegment when the
// entry or the object's fixed settings (a queue's geometry, a barrier's
// parties, a semaphore's settings, a condition's lock) are not ones the
// library can have written; a snapshot of an object whose changing state is
// impossible says so in its `corrupt` field instead.
#pragma once

#include <variant>

#include "ipckit/segment.hpp"
#include "ipckit/stats.hpp"

namespace ipckit {

// One alternative per kind of state: Value and Array give ValueStats, Lock
// and RLock LockStats, Semaphore and BoundedSemaphore SemaphoreStats, Queue
// and JoinableQueue QueueStats. monostate: a kind this build cannot take a
// snapshot of.
using ObjectStats = std::variant<std::monostate, ValueStats, LockStats, ConditionStats, SemaphoreStats, EventStats,
                                 BarrierStats, QueueStats, PriorityQueueStats>;

struct ObjectSnapshot {
  ObjectInfo info;  // its directory entry, checked
  ObjectStats stats;
};

}  // namespace ipckit
