// ipckit/segment.hpp — a named shared-memory segment and the objects in it.
//
// A Segment is one shared-memory file (/dev/shm/ipckit.<name>) with a header
// and a directory of named objects. Processes meet by name:
//
//   auto seg = ipckit::Segment::open_or_create("demo", 1 << 20);
//   auto counter = seg.value<std::int64_t>("counter");   // zero on first use
//   auto lock = seg.lock("A");
//
// Creation is exclusive and owner-only (mode 0600) unless
// `SegmentOptions::mode` says otherwise. A segment is built unnamed, its
// whole size reserved (so a full /dev/shm is an OutOfSpace at creation, never
// a SIGBUS later), its header written, and only then linked under its name,
// atomically and only if the name is free. So an opener never sees a
// half-made segment and never waits for a creator; a creator that dies
// half-way leaves nothing behind. Many processes may race in open_or_create:
// all of them end up on the one segment that was published first.
//
// Opening never blocks on another process: ipckit takes no file locks, so a
// stopped process or another user holding a flock on the file changes
// nothing. What is found under a name is checked before it is used: by
// default `open`/`open_or_create` refuse (PermissionDenied, saying why) a
// file owned by another user, or one whose mode grants group/other bits the
// caller did not ask for (another user may have planted it to read what you
// write). `OpenOptions` / `SegmentOptions` accept a named other owner and a
// shared mode explicitly. A file under the name that is not a complete
// segment is CorruptSegment, never replaced: remove it (`ipckit rm`).
//
// Objects are created on first use, zero-initialised, and never move; each
// carries a type tag (type name, size, alignment, kind, layout version) that
// is checked whenever another process opens it by name. Creating objects
// takes the segment's directory lock (crash-safe, like Lock) for at most
// `kDirectoryLockWait` (5 s): a holder that is stopped (SIGSTOP, a debugger)
// makes creation fail with Timeout naming it instead of blocking forever.
// Using objects never takes it.
//
// The segment's geometry (size, directory size and place) is copied into the
// handle when it is opened and never re-read; what other processes change
// (allocation pointer, object count, directory entries) is range-checked
// before every use, so a stray write into the segment is a CorruptSegment,
// never a wild memory access or an object written over another.
//
// Environment: IPCKIT_SHM_DIR (an absolute path) puts segment files in
// another directory than /dev/shm, e.g. a container's shared tmpfs. Every
// process that meets by name must use the same one.
//
// Destroying a Segment handle unmaps it once no object handle needs it;
// `Segment::remove(name)` deletes the name from the system (processes that
// have it mapped keep working).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/barrier.hpp"
#include "ipckit/condition.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/error.hpp"
#include "ipckit/event.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/queue_options.hpp"
#include "ipckit/semaphore.hpp"

namespace ipckit {

template <class T, class L = RLock>
class Value;
template <class T, class L = RLock>
class Array;
template <class T>
class RawValue;
template <class T>
class RawArray;
// The locks a Value or Array may be bound to (Python's `lock=`).
template <class L>
concept ValueLock = std::is_same_v<L, Lock> || std::is_same_v<L, RLock>;
template <class T>
class Queue;
template <class T>
class JoinableQueue;
template <class T>
class PriorityQueue;
template <class T>
class JoinablePriorityQueue;
template <class T>
class LifoQueue;
class ByteQueue;
namespace detail {
class QueueCore;
class PriorityQueueCore;
}  // namespace detail

struct SegmentOptions {
  // Permissions of a segment this call creates (umask is ignored). When
  // open_or_create finds an existing segment, also the group/other bits it
  // accepts on it (see OpenOptions::mode).
  mode_t mode = 0600;
  std::uint32_t max_objects = 256;  // directory capacity
  // Slots of the process table (1..65536, 320 bytes each; include
  // <ipckit/process_table.hpp>): processes beyond it are simply not listed,
  // never refused. 32 keeps the smallest segments (64 KiB) usable: with
  // 256 objects, 64 slots would need 69,824 bytes (min_size()).
  std::uint32_t max_processes = 32;
  // Cross-process deadlock detection for the segment's Lock and RLock
  // objects (see "Deadlock detection" in <ipckit/process_table.hpp>): a
  // blocking lock() that would close a cycle of waits throws
  // DeadlockDetected instead of hanging. Costs nothing until a thread sleeps.
  bool deadlock_detection = false;
  // open_or_create finding an existing segment: also accept one owned by
  // this user (see OpenOptions::allow_owner).
  std::optional<uid_t> allow_owner;
};

// What Segment::open accepts. By default only a segment owned by the
// calling user (effective uid) whose mode grants group/other nothing: any
// local user can create files in /dev/shm, so anything else may have been
// planted to capture what you write.
struct OpenOptions {
  // The group/other permission bits accepted (owner bits are not checked):
  // 0660 to open a segment shared with a group, 0666 with everyone.
  mode_t mode = 0600;
  // Also accept a segment owned by this user (you trust them).
  std::optional<uid_t> allow_owner;
  // Accept any owner and mode: for tools that only look (ipckit ls/inspect).
  bool any_owner = false;
};

// How long creating an object waits for the segment's directory lock before
// it throws Timeout naming the holder (a stopped process, a debugger).
inline constexpr std::chrono::seconds kDirectoryLockWait{5};

enum class ObjectKind : std::uint32_t {
  Value = 1,
  Array = 2,
  Lock = 3,
  RLock = 4,
  Condition = 5,
  Semaphore = 6,
  BoundedSemaphore = 7,
  Event = 8,
  Barrier = 9,
  Queue = 10,
  JoinableQueue = 11,
  PriorityQueue = 12,
  LifoQueue = 13,
  JoinablePriorityQueue = 14,
};
inline constexpr std::uint32_t kLastObjectKind = 14;
const char* to_string(ObjectKind kind) noexcept;

// One directory entry, as `Segment::objects()` reports it.
struct ObjectInfo {
  std::string name;
  ObjectKind kind{};
  std::string type_name;  // as typeid(T).name() spells it ("l" for int64_t)
  std::uint32_t elem_size = 0;
  std::uint64_t count = 0;   // array length; 1 for a Value; a semaphore's initial value; a barrier's parties
  std::uint64_t offset = 0;  // inside the segment
  std::uint64_t bytes = 0;
};

struct ObjectSnapshot;   // ipckit/inspect.hpp
struct AttachedProcess;  // ipckit/process_table.hpp
struct Deadlock;         // ipckit/process_table.hpp

// What `Segment::info()` and `ipckit ls` report about a segment.
struct SegmentInfo {
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t used = 0;
  std::uint32_t objects = 0;
  std::uint32_t max_objects = 0;
  int creator_pid = 0;
  bool creator_alive = false;
  std::int64_t created_unix = 0;  // seconds since the epoch
  mode_t mode = 0;
  uid_t owner_uid = 0;
  std::uint32_t max_processes = 0;  // process table slots
  bool deadlock_detection = false;  // SegmentOptions::deadlock_detection
};

namespace detail {
class SegmentImpl;
struct DataSpec;
class SegmentAccess;

struct ObjectSpec {
  ObjectKind kind;
  const char* type_name;  // typeid(T).name()
  std::uint32_t elem_size;
  std::uint32_t elem_align;
  std::uint64_t count;
  std::uint32_t layout_version;
  std::uint64_t bytes;  // whole object, header included
  // Writes the initial contents before the object is published (may be null:
  // the memory is already zero).
  void (*init)(void* body, const void* arg) = nullptr;
  const void* init_arg = nullptr;
};

// The spec of an object that is one State struct (a lock, an event, ...).
template <class State>
ObjectSpec state_spec(ObjectKind kind, const char* type_name, std::uint32_t layout, std::uint64_t count = 1) {
  return ObjectSpec{kind, type_name, sizeof(State), alignof(State), count, layout, sizeof(State)};
}
}  // namespace detail

class Segment {
 public:
  // Throws AlreadyExists, InvalidName, InvalidArgument (size), OutOfSpace
  // (the file system cannot hold `size` now or ever: the message gives the
  // numbers), PermissionDenied, SystemError.
  static Segment create(std::string_view name, std::size_t size, SegmentOptions options = {});
  // Throws NotFound, InvalidName, PermissionDenied (another owner, a mode
  // `options` does not accept), CorruptSegment, SystemError. Never waits.
  static Segment open(std::string_view name, OpenOptions options = {});
  // Opens the segment if it exists (its size is kept; it must pass the
  // checks of open() with options.mode and options.allow_owner), otherwise
  // creates it. Throws what create() and open() throw. Processes racing to
  // create it each reserve `size` until the first one publishes; where
  // /dev/shm cannot hold all of them at once, a loser that finds nothing
  // published yet gets OutOfSpace.
  static Segment open_or_create(std::string_view name, std::size_t size, SegmentOptions options = {});
  // Deletes the name; returns false if there was none. Throws InvalidName, PermissionDenied.
  static bool remove(std::string_view name);
  [[nodiscard]] static bool exists(std::string_view name);
  // Names of the ipckit segments on this machine.
  [[nodiscard]] static std::vector<std::string> list();
  // Smallest size accepted by create() for a given directory capacity.
  [[nodiscard]] static std::size_t min_size(std::uint32_t max_objects = SegmentOptions{}.max_objects,
                                            std::uint32_t max_processes = SegmentOptions{}.max_processes);

  // Objects: opened by name, created zero-initialised on first use.
  // Throw TypeMismatch, InvalidName, OutOfSpace, CorruptSegment.
  // Values and arrays (include <ipckit/value.hpp>) come with their own RLock,
  // bound to a Lock/RLock of this segment (Python's `lock=`: every process
  // must bind the same one, TypeMismatch otherwise; InvalidArgument for a
  // lock of another segment), or raw (no lock). An initial value or sequence
  // is set only if this call creates the object; every process must give an
  // array the same length. Arrays of no or absurdly many elements are
  // InvalidArgument.
  template <class T>
  Value<T> value(std::string_view name);
  template <class T>
  Value<T> value(std::string_view name, const T& initial);
  template <class T, ValueLock L>
  Value<T, L> value(std::string_view name, const L& lock);
  template <class T, ValueLock L>
  Value<T, L> value(std::string_view name, const T& initial, const L& lock);
  template <class T>
  RawValue<T> raw_value(std::string_view name);
  template <class T>
  RawValue<T> raw_value(std::string_view name, const T& initial);
  template <class T>
  Array<T> array(std::string_view name, std::size_t count);
  template <class T, ValueLock L>
  Array<T, L> array(std::string_view name, std::size_t count, const L& lock);
  template <class T>
  Array<T> array(std::string_view name, std::span<const T> values);
  template <class T, ValueLock L>
  Array<T, L> array(std::string_view name, std::span<const T> values, const L& lock);
  template <class T>
  Array<T> array(std::string_view name, std::initializer_list<T> values);
  template <class T, ValueLock L>
  Array<T, L> array(std::string_view name, std::initializer_list<T> values, const L& lock);
  template <class T>
  RawArray<T> raw_array(std::string_view name, std::size_t count);
  template <class T>
  RawArray<T> raw_array(std::string_view name, std::span<const T> values);
  template <class T>
  RawArray<T> raw_array(std::string_view name, std::initializer_list<T> values);
  Lock lock(std::string_view name);
  RLock rlock(std::string_view name);
  // A condition with its own lock, or bound to a named Lock/RLock of this
  // segment (every process must bind it to the same lock: TypeMismatch otherwise).
  Condition condition(std::string_view name);
  Condition condition(std::string_view name, const Lock& lock);
  Condition condition(std::string_view name, const RLock& lock);
  // `initial` units (every process must pass the same: TypeMismatch otherwise).
  Semaphore semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options = {});
  Semaphore bounded_semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options = {});
  Event event(std::string_view name);
  // Throws InvalidArgument unless 1 <= parties <= 256. `options` (an action
  // run by the last arrival, a default timeout) belong to this handle.
  Barrier barrier(std::string_view name, std::uint32_t parties, BarrierOptions options = {});
  // Queues of cereal-serialized T (include <ipckit/queue.hpp>); every process
  // must pass the same T and options (TypeMismatch otherwise).
  template <class T>
  Queue<T> queue(std::string_view name, const QueueOptions& options = {});
  template <class T>
  JoinableQueue<T> joinable_queue(std::string_view name, const QueueOptions& options = {});
  ByteQueue byte_queue(std::string_view name, const QueueOptions& options = {});
  // Lowest priority value first, FIFO among equal priorities (include
  // <ipckit/priority_queue.hpp>). It keeps fixed slots of max_message bytes:
  // max_items of them if set, else as many as capacity_bytes holds.
  template <class T>
  PriorityQueue<T> priority_queue(std::string_view name, const QueueOptions& options = {});
  // A priority queue with task_done()/join() (include <ipckit/priority_queue.hpp>).
  template <class T>
  JoinablePriorityQueue<T> joinable_priority_queue(std::string_view name, const QueueOptions& options = {});
  // Last put, first got: Python's queue.LifoQueue (include <ipckit/lifo_queue.hpp>);
  // fixed slots as a priority queue's.
  template <class T>
  LifoQueue<T> lifo_queue(std::string_view name, const QueueOptions& options = {});

  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t free_bytes() const noexcept;
  [[nodiscard]] SegmentInfo info() const;
  [[nodiscard]] std::vector<ObjectInfo> objects() const;
  // A snapshot of object `name`, whatever its kind (include <ipckit/inspect.hpp>).
  [[nodiscard]] ObjectSnapshot inspect(std::string_view name, std::size_t max_elements = SIZE_MAX) const;
  // The process table: who is attached, their states, what they wait on and
  // hold (include <ipckit/process_table.hpp>). Never locks, never blocks.
  [[nodiscard]] std::vector<AttachedProcess> processes() const;
  // The cycles of lock waits in the segment now, each once (include
  // <ipckit/process_table.hpp>); found with or without deadlock detection on.
  [[nodiscard]] std::vector<Deadlock> deadlocks() const;

 private:
  // What the library builds objects from; reached through detail::SegmentAccess.
  friend class detail::SegmentAccess;
  explicit Segment(std::shared_ptr<detail::SegmentImpl> impl) : impl_(std::move(impl)) {}
  void* find_or_create(std::string_view name, const detail::ObjectSpec& spec);
  [[nodiscard]] std::shared_ptr<const void> keepalive() const noexcept;
  // How messages and errors name object `name` ("lock 'A' in segment 'demo'").
  [[nodiscard]] detail::Label label_of(ObjectKind kind, std::string_view name) const;
  [[nodiscard]] std::optional<std::uint64_t> offset_of(const void* p) const noexcept;
  // Raw access for tools (the CLI, tests): the body of object `name`, its directory entry validated.
  [[nodiscard]] const void* object_body(std::string_view name, ObjectInfo* info = nullptr) const;
  // The untyped engines behind the queues (src/queue.cpp, src/priority_queue.cpp).
  detail::QueueCore open_queue(std::string_view name, ObjectKind kind, const char* type_name,
                               const QueueOptions& options);
  detail::PriorityQueueCore open_priority_queue(std::string_view name, const char* type_name,
                                                const QueueOptions& options,
                                                ObjectKind kind = ObjectKind::PriorityQueue);
  // Values and arrays (value.hpp): finds or creates the object, checks how it is guarded.
  void* bind_data(std::string_view name, const detail::DataSpec& d);
  [[nodiscard]] std::string lock_at(std::uint64_t offset) const;
  template <class T, class L>
  std::pair<T*, L> bind_guarded(std::string_view name, ObjectKind kind, std::size_t count, const T* initial,
                                const L* lock);
  template <class T, class L>
  Value<T, L> make_value(std::string_view name, const T* initial, const L* lock);
  template <class T, class L>
  Array<T, L> make_array(std::string_view name, std::size_t count, const T* initial, const L* lock);
  template <class T>
  RawValue<T> make_raw_value(std::string_view name, const T* initial);
  template <class T>
  RawArray<T> make_raw_array(std::string_view name, std::size_t count, const T* initial);
  std::shared_ptr<detail::SegmentImpl> impl_;
};

// Removes a segment's name when it goes out of scope (Boost's
// remove_shared_memory_on_destroy): for the process that owns a segment's
// lifetime, e.g. a demo or a test. Never throws.
class SegmentRemover {
 public:
  explicit SegmentRemover(std::string name) : name_(std::move(name)) {}
  ~SegmentRemover() {
    try {
      Segment::remove(name_);
    } catch (...) {
    }
  }
  SegmentRemover(const SegmentRemover&) = delete;
  SegmentRemover& operator=(const SegmentRemover&) = delete;

 private:
  std::string name_;
};

}  // namespace ipckit
