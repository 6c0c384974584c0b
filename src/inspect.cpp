// Segment::inspect: a snapshot of any object by name (ipckit/inspect.hpp).
//
// The object's directory entry is checked by object_body(); here its size is
// checked against its kind, a read-only view handle is made over its state
// (the handles' constructors check the fixed settings they copy: a queue's
// geometry, a barrier's parties, a semaphore's settings) and the view's own
// stats() takes the snapshot. Each kind is one row of kKinds.
#include "ipckit/inspect.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <iterator>
#include <memory>
#include <string>

#include "ipckit/barrier.hpp"
#include "ipckit/condition.hpp"
#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/event.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/semaphore.hpp"
#include "ipckit/value.hpp"

namespace ipckit {
namespace {

// What a row needs to know about the object it looks at.
struct Target {
  const Segment& seg;
  const ObjectInfo& info;
  void* body;
  detail::Label label;  // "queue 'jobs' in segment 'demo'"
  std::shared_ptr<const void> keep;
  std::size_t max_elements;
};

// One read of a field another process may write: it is checked, then used as read.
template <class T>
T load_once(T& field) {
  return std::atomic_ref<T>(field).load(std::memory_order_relaxed);
}

[[noreturn]] void throw_corrupt(const Target& t, const std::string& what) { detail::raise_corrupt(t.label, what); }

LockStats lock_at(const Target& t, void* state) {
  return detail::SegmentAccess::make<Lock>(static_cast<detail::LockState*>(state), t.keep, t.label).stats();
}

// The named Lock or RLock of this segment at `offset` (what a condition or a
// bound value records), or CorruptSegment.
const ObjectInfo& lock_named_at(const Target& t, const std::vector<ObjectInfo>& objects, std::uint64_t offset) {
  const auto bound = std::find_if(objects.begin(), objects.end(), [&](const ObjectInfo& o) {
    return o.offset == offset && (o.kind == ObjectKind::Lock || o.kind == ObjectKind::RLock) &&
           o.bytes >= sizeof(detail::LockState);
  });
  if (bound == objects.end())
    throw_corrupt(t, "it is bound to offset " + std::to_string(offset) + ", where no lock is");
  return *bound;
}

// Value and Array: [guard][data] and [guard][count, padded][data], where the
// guard is its own lock or a BoundHeader naming a lock; a raw one is its data alone.
ObjectStats values(const Target& t, std::uint64_t count) {
  const auto& i = t.info;
  const detail::Guard guard = detail::guard_of(i.type_name);
  const std::size_t data_offset = detail::data_offset(i.kind, guard);
  if (i.elem_size == 0 || i.bytes < data_offset || (i.bytes - data_offset) / i.elem_size < count)
    throw_corrupt(t, std::to_string(count) + " elements of " + std::to_string(i.elem_size) + " bytes do not fit its " +
                         std::to_string(i.bytes) + " bytes");
  std::optional<LockStats> lock;
  if (guard == detail::Guard::Own) lock = lock_at(t, t.body);
  if (guard == detail::Guard::Bound) {
    const auto offset = load_once(static_cast<detail::BoundHeader*>(t.body)->lock_offset);
    const auto objects = t.seg.objects();
    const ObjectInfo& named = lock_named_at(t, objects, offset);
    lock = lock_at(t, const_cast<void*>(detail::SegmentAccess::object_body(t.seg, named.name)));
  }
  const std::string type(detail::unguarded_type_name(i.type_name));
  return detail::value_stats(lock, type.c_str(), i.elem_size, count, static_cast<const char*>(t.body) + data_offset,
                             t.max_elements);
}

ObjectStats value(const Target& t) { return values(t, 1); }
ObjectStats array(const Target& t) { return values(t, t.info.count); }
ObjectStats lock(const Target& t) { return lock_at(t, t.body); }

ObjectStats event(const Target& t) {
  return detail::SegmentAccess::make<Event>(static_cast<detail::EventState*>(t.body), t.keep, t.label).stats();
}

ObjectStats semaphore(const Target& t) {
  return detail::SegmentAccess::make<Semaphore>(static_cast<detail::SemaphoreState*>(t.body), t.keep, t.label).stats();
}

ObjectStats barrier(const Target& t) {
  return detail::SegmentAccess::make<Barrier>(static_cast<detail::BarrierState*>(t.body), t.keep, t.label).stats();
}

// A condition's entry count is the offset of the named lock it is bound to
// (0: its own), which must be a Lock or RLock of this segment.
ObjectStats condition(const Target& t) {
  auto* s = static_cast<detail::ConditionState*>(t.body);
  detail::LockState* lock = &s->own_lock;
  bool reentrant = false;
  if (const std::uint64_t offset = t.info.count; offset != 0) {
    const auto objects = t.seg.objects();
    const ObjectInfo& bound = lock_named_at(t, objects, offset);
    lock = static_cast<detail::LockState*>(const_cast<void*>(detail::SegmentAccess::object_body(t.seg, bound.name)));
    reentrant = bound.kind == ObjectKind::RLock;
  }
  return detail::SegmentAccess::make<Condition>(s, lock, reentrant, t.keep, t.label).stats();
}

// A queue's geometry is written once by its creator; the QueueCore
// constructor refuses one a queue cannot have.
ObjectStats queue(const Target& t) {
  auto* s = static_cast<detail::QueueState*>(t.body);
  const detail::QueueGeometry geo{load_once(s->capacity), load_once(s->max_message), load_once(s->max_items),
                                  t.info.kind == ObjectKind::JoinableQueue};
  if (t.info.bytes != sizeof(detail::QueueState) + geo.capacity)
    throw_corrupt(t, "its ring of " + std::to_string(geo.capacity) + " bytes does not fit its " +
                         std::to_string(t.info.bytes) + " bytes");
  return detail::SegmentAccess::make<detail::QueueCore>(s, t.keep, t.label, geo).stats();
}

ObjectStats priority_queue(const Target& t) {
  auto* s = static_cast<detail::PriorityQueueState*>(t.body);
  const std::uint64_t slots = load_once(s->slot_count);
  const std::uint64_t max_message = load_once(s->max_message);
  const std::uint64_t slot_size = load_once(s->slot_size);
  // What open_priority_queue checks, and the layout the entry's size must match.
  if (slots == 0 || slots > detail::kMaxPrioritySlots || slots != t.info.count ||
      max_message > detail::kMaxPriorityMessage || slot_size != detail::priority_slot_size(max_message) ||
      detail::priority_queue_layout(slots, slot_size).bytes != t.info.bytes)
    throw_corrupt(t, "its geometry (" + std::to_string(slots) + " slots of " + std::to_string(slot_size) +
                         " bytes, max_message " + std::to_string(max_message) + ") does not match its " +
                         std::to_string(t.info.bytes) + " bytes");
  const auto kind = t.info.kind;
  const detail::PriorityGeometry geo{slots, slot_size, max_message,
                                     kind == ObjectKind::LifoQueue ? detail::kOrderLifo : detail::kOrderPriority,
                                     kind == ObjectKind::JoinablePriorityQueue};
  return detail::SegmentAccess::make<detail::PriorityQueueCore>(s, t.keep, t.label, geo).stats();
}

// One row per way of taking a snapshot: the kinds it serves, the state they
// need at least, and the function.
struct KindSnapshot {
  std::array<ObjectKind, 3> kinds;  // unused places: ObjectKind{}
  std::size_t state_bytes;
  ObjectStats (*take)(const Target&);
};

constexpr KindSnapshot kKinds[] = {
    {{ObjectKind::Value}, 0, value},  // its size depends on its guard: values() checks it
    {{ObjectKind::Array}, 0, array},
    {{ObjectKind::Lock, ObjectKind::RLock}, sizeof(detail::LockState), lock},
    {{ObjectKind::Condition}, sizeof(detail::ConditionState), condition},
    {{ObjectKind::Semaphore, ObjectKind::BoundedSemaphore}, sizeof(detail::SemaphoreState), semaphore},
    {{ObjectKind::Event}, sizeof(detail::EventState), event},
    {{ObjectKind::Barrier}, sizeof(detail::BarrierState), barrier},
    {{ObjectKind::Queue, ObjectKind::JoinableQueue}, sizeof(detail::QueueState), queue},
    {{ObjectKind::PriorityQueue, ObjectKind::LifoQueue, ObjectKind::JoinablePriorityQueue},
     sizeof(detail::PriorityQueueState),
     priority_queue},
};

}  // namespace

ObjectSnapshot Segment::inspect(std::string_view name, std::size_t max_elements) const {
  ObjectSnapshot snap;
  void* body = const_cast<void*>(object_body(name, &snap.info));
  const ObjectKind kind = snap.info.kind;
  const auto row = std::find_if(std::begin(kKinds), std::end(kKinds), [&](const KindSnapshot& k) {
    return kind != ObjectKind{} && std::find(k.kinds.begin(), k.kinds.end(), kind) != k.kinds.end();
  });
  if (row == std::end(kKinds)) return snap;  // a kind without a snapshot: monostate
  const Target t{*this, snap.info, body, label_of(snap.info.kind, name), keepalive(), max_elements};
  if (snap.info.bytes < row->state_bytes)
    throw_corrupt(t, "it occupies " + std::to_string(snap.info.bytes) + " bytes, fewer than the " +
                         std::to_string(row->state_bytes) + " of its state");
  snap.stats = row->take(t);
  return snap;
}

}  // namespace ipckit
