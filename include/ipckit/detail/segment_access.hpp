// ipckit/detail/segment_access.hpp — ipckit's one door into a Segment's
// internals and into the handles' internal constructors.
//
// A user opens objects by name (Segment::lock, ...). What those calls are
// built from — finding or creating a directory entry, the mapping a handle
// keeps alive, the label its messages use, a handle made on a state in shared
// memory — is the library's business, not theirs: Segment and the handles
// keep it private and befriend this class alone. ipckit's own code (each
// kind's factory, the CLI, tests) goes through here, so a grep for
// SegmentAccess finds every use.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ipckit/detail/label.hpp"
#include "ipckit/segment.hpp"

namespace ipckit::detail {

class SegmentAccess {
 public:
  // Object `name` as `spec` describes it: found (and checked against `spec`)
  // or created. Throws TypeMismatch, InvalidName, OutOfSpace, CorruptSegment, Timeout.
  static void* find_or_create(Segment& seg, std::string_view name, const ObjectSpec& spec) {
    return seg.find_or_create(name, spec);
  }
  // What a handle holds to keep the segment mapped.
  [[nodiscard]] static std::shared_ptr<const void> keepalive(const Segment& seg) noexcept { return seg.keepalive(); }
  // Who object `name` of `kind` is, for messages and errors ("lock 'A' in segment 'demo'").
  [[nodiscard]] static Label label(const Segment& seg, ObjectKind kind, std::string_view name) {
    return seg.label_of(kind, name);
  }
  // Where `p` lies in the segment's mapping, if it does.
  [[nodiscard]] static std::optional<std::uint64_t> offset_of(const Segment& seg, const void* p) noexcept {
    return seg.offset_of(p);
  }

  // A handle made on its state through its internal constructor.
  template <class Handle, class... Args>
  [[nodiscard]] static Handle make(Args&&... args) {
    return Handle(std::forward<Args>(args)...);
  }
  // Finds or creates object `name` and makes Handle(State*, keepalive, label) on it.
  template <class Handle, class State>
  [[nodiscard]] static Handle open(Segment& seg, std::string_view name, const ObjectSpec& spec) {
    auto* state = static_cast<State*>(seg.find_or_create(name, spec));
    return Handle(state, seg.keepalive(), seg.label_of(spec.kind, name));
  }
  // The untyped engines behind the typed queues: defined next to them, in
  // src/queue.cpp and src/priority_queue.cpp (include detail/queue_core.hpp or
  // detail/priority_queue_core.hpp to use them).
  static QueueCore open_queue(Segment& seg, std::string_view name, ObjectKind kind, const char* type_name,
                              const QueueOptions& options);
  static PriorityQueueCore open_priority_queue(Segment& seg, std::string_view name, const char* type_name,
                                               const QueueOptions& options,
                                               ObjectKind kind = ObjectKind::PriorityQueue);

  // The state a Lock or RLock works on (a condition binds to it).
  [[nodiscard]] static LockState* state_of(const LockHandle& lock) noexcept { return lock.s_; }

  // Raw access for tools (the CLI, tests): the body of object `name`, its
  // directory entry validated (its size against its kind is the caller's to check).
  [[nodiscard]] static const void* object_body(const Segment& seg, std::string_view name, ObjectInfo* info = nullptr) {
    return seg.object_body(name, info);
  }
};

}  // namespace ipckit::detail
