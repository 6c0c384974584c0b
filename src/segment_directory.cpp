// The object directory: finding an object by name, checking it against what
// the caller expects, and creating it under the directory lock. Every entry
// is copied out of the segment and range-checked before it is used.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/segment.hpp"
#include "segment_impl.hpp"

namespace ipckit {

using detail::DirEntry;

namespace {

std::uint64_t fnv1a(const char* s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s != '\0'; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ULL;
  return h;
}

void check_object_name(std::string_view seg, std::string_view name) {
  auto bad = [&](const std::string& why) {
    const detail::Label who{std::string(name), std::string(seg),
                            "invalid object name '" + std::string(name) + "' in segment '" + std::string(seg) + "'"};
    detail::raise<InvalidName>(who, why, "use 1-" + std::to_string(detail::kMaxObjectName) + " printable characters");
  };
  if (name.empty()) bad("it is empty");
  if (name.size() > detail::kMaxObjectName) bad("it is " + std::to_string(name.size()) + " characters long");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("it contains a control character");
}

// What DirEntry::count means for a kind, for mismatch messages.
std::string count_words(ObjectKind kind, std::uint64_t n) {
  switch (kind) {
    case ObjectKind::Semaphore:
    case ObjectKind::BoundedSemaphore:
      return "initial value " + std::to_string(n);
    case ObjectKind::Barrier:
      return std::to_string(n) + " parties";
    case ObjectKind::Condition:
      return "its lock at offset " + std::to_string(n);
    case ObjectKind::Queue:
    case ObjectKind::JoinableQueue:
      return "capacity " + std::to_string(n) + " bytes";
    case ObjectKind::PriorityQueue:
    case ObjectKind::LifoQueue:
    case ObjectKind::JoinablePriorityQueue:
      return std::to_string(n) + " slots";
    default:
      return std::to_string(n) + " elements";
  }
}

// The allocation pointer, checked against the handle's own geometry.
std::uint64_t checked_top(const detail::SegmentImpl& impl) {
  const std::uint64_t top = impl.header().heap_top.load(std::memory_order_acquire);
  if (top < impl.geometry().heap_offset || top > impl.geometry().size)
    impl.corrupt("its allocation pointer (" + std::to_string(top) + ") lies outside its heap (" +
                 std::to_string(impl.geometry().heap_offset) + " to " + std::to_string(impl.geometry().size) + ")");
  return top;
}

// The number of published entries, checked against the handle's geometry.
std::uint32_t checked_count(const detail::SegmentImpl& impl) {
  const std::uint32_t n = impl.header().object_count.load(std::memory_order_acquire);
  if (n > impl.geometry().max_objects)
    impl.corrupt("its object count (" + std::to_string(n) + ") exceeds its directory (" +
                 std::to_string(impl.geometry().max_objects) + " entries)");
  return n;
}

// A published entry, copied out of the segment (so that it cannot change
// between check and use) and checked against the geometry and `top`.
DirEntry checked_entry(const detail::SegmentImpl& impl, std::uint32_t i, std::uint64_t top) {
  DirEntry e;
  std::memcpy(&e, &impl.entry(i), sizeof e);
  const bool named = std::memchr(e.name, '\0', sizeof e.name) != nullptr &&
                     std::memchr(e.type_name, '\0', sizeof e.type_name) != nullptr;
  if (!named || e.offset < impl.geometry().heap_offset || e.offset % 64 != 0 || e.bytes > top ||
      e.offset > top - e.bytes || e.kind < 1 || e.kind > kLastObjectKind)
    impl.corrupt("directory entry " + std::to_string(i) + " points outside the segment");
  return e;
}

// The directory as seen now: the entry named `name` if any, how many entries
// there are, and where the objects end.
struct Lookup {
  std::optional<DirEntry> found;
  std::uint32_t count = 0;
  std::uint64_t objects_end = 0;
};

Lookup look_up(const detail::SegmentImpl& impl, std::string_view name) {
  Lookup r;
  const std::uint64_t top = checked_top(impl);
  r.count = checked_count(impl);
  r.objects_end = impl.geometry().heap_offset;
  std::uint32_t at = 0;
  for (std::uint32_t i = 0; i < r.count; ++i) {
    const DirEntry e = checked_entry(impl, i, top);
    r.objects_end = std::max(r.objects_end, e.offset + e.bytes);
    if (!r.found && name == e.name) {
      r.found = e;
      at = i;
    }
  }
  if (!r.found) return r;
  // Objects never overlap: an entry that overlaps another was rewritten, and
  // handing it out would let two objects share memory.
  const std::uint64_t begin = r.found->offset;
  const std::uint64_t end = begin + r.found->bytes;
  for (std::uint32_t i = 0; i < r.count; ++i) {
    if (i == at) continue;
    const DirEntry& other = impl.entry(i);
    const std::uint64_t o_begin = detail::read_once(other.offset);
    const std::uint64_t o_end = o_begin + std::min(detail::read_once(other.bytes), UINT64_MAX - o_begin);
    if (o_begin < end && begin < o_end)
      impl.corrupt("directory entries " + std::to_string(at) + " ('" + std::string(name) + "') and " +
                   std::to_string(i) + " overlap");
  }
  return r;
}

ObjectInfo to_info(const DirEntry& e) {
  return ObjectInfo{e.name, static_cast<ObjectKind>(e.kind), e.type_name, e.elem_size, e.count, e.offset, e.bytes};
}

// Takes the directory lock for at most kDirectoryLockWait: its holder may
// be stopped (SIGSTOP, a debugger), and creation must not wait for it
// forever. `what` is the object to be created.
void lock_directory(Lock& dir, const detail::Label& what) {
  if (dir.try_lock_for(kDirectoryLockWait)) return;
  std::string who = "a process that has just let it go";
  if (auto h = dir.holder())
    who = "pid " + std::to_string(h->pid) + " (thread " + std::to_string(h->tid) + (h->alive ? ", alive)" : ", dead)");
  detail::raise<Timeout>(what,
                         "cannot create it: the segment's directory lock has been held by " + who + " for more than " +
                             std::to_string(kDirectoryLockWait.count()) + " s",
                         "that process is probably stopped (SIGSTOP, Ctrl-Z, a debugger) while creating an object: "
                         "resume or end it, then retry");
}

// The existing entry `e` must be what `spec` asks for. `who` names it as it is.
void check_match(const detail::Label& who, const DirEntry& e, const detail::ObjectSpec& spec) {
  const auto kind = static_cast<ObjectKind>(e.kind);
  if (kind != spec.kind)
    detail::raise<TypeMismatch>(who, std::string("it is a ") + to_string(kind) + ", not a " + to_string(spec.kind),
                                std::string("use another name or open it as a ") + to_string(kind));
  if (e.type_hash != fnv1a(spec.type_name) || e.elem_size != spec.elem_size || e.elem_align != spec.elem_align)
    detail::raise<TypeMismatch>(who,
                                "it holds type '" + std::string(e.type_name) + "' (" + std::to_string(e.elem_size) +
                                    " bytes), not '" + spec.type_name + "' (" + std::to_string(spec.elem_size) +
                                    " bytes)",
                                "open it with the type it was created with");
  if (e.layout_version != spec.layout_version)
    detail::raise<TypeMismatch>(who,
                                "it has layout version " + std::to_string(e.layout_version) +
                                    ", this program expects " + std::to_string(spec.layout_version),
                                "build every program with the same ipckit");
  if (e.count != spec.count)
    detail::raise<TypeMismatch>(
        who, "it was created with " + count_words(spec.kind, e.count) + ", not " + count_words(spec.kind, spec.count),
        "open it as it was created");
  if (e.bytes != spec.bytes) detail::raise_corrupt(who, "its size is inconsistent with its type");
}

// Where a new object of `bytes` goes: past every object, inside the segment.
std::uint64_t place_object(const detail::SegmentImpl& impl, const Lookup& l, std::string_view name,
                           std::uint64_t bytes) {
  const detail::Geometry& g = impl.geometry();
  const detail::Label who{std::string(name), impl.name(), detail::segment_label(impl.name()).text};
  if (l.count >= g.max_objects)
    detail::raise<OutOfSpace>(who,
                              "cannot hold object '" + std::string(name) + "': its directory is full (" +
                                  std::to_string(g.max_objects) + " objects)",
                              "create the segment with a larger SegmentOptions::max_objects");
  const std::uint64_t top = checked_top(impl);
  // The pointer only grows, past every object: one moved back would hand
  // out live objects' memory again.
  if (top < l.objects_end)
    impl.corrupt("its allocation pointer (" + std::to_string(top) + ") lies below the end of its objects (" +
                 std::to_string(l.objects_end) + ")");
  const std::uint64_t off = detail::align_up(top, 64);
  if (off > g.size || bytes > g.size - off)
    detail::raise<OutOfSpace>(who,
                              "cannot hold object '" + std::string(name) + "': it needs " + std::to_string(bytes) +
                                  " bytes and " + std::to_string(g.size > off ? g.size - off : 0) + " are left",
                              "create the segment larger");
  return off;
}

}  // namespace

namespace detail {
std::vector<ObjectInfo> list_objects(const SegmentImpl& impl) {
  std::vector<ObjectInfo> out;
  const std::uint64_t top = checked_top(impl);
  const std::uint32_t n = checked_count(impl);
  for (std::uint32_t i = 0; i < n; ++i) out.push_back(to_info(checked_entry(impl, i, top)));
  return out;
}
}  // namespace detail

std::vector<ObjectInfo> Segment::objects() const { return detail::list_objects(*impl_); }

const void* Segment::object_body(std::string_view name, ObjectInfo* info) const {
  const Lookup l = look_up(*impl_, name);
  if (!l.found)
    detail::raise<NotFound>({std::string(name), impl_->name(), detail::segment_label(impl_->name()).text},
                            "it has no object '" + std::string(name) + "'",
                            "`ipckit inspect " + impl_->name() + "` lists what is there");
  if (info != nullptr) *info = to_info(*l.found);
  return impl_->at(l.found->offset);
}

void* Segment::find_or_create(std::string_view name, const detail::ObjectSpec& spec) {
  check_object_name(impl_->name(), name);
  auto& h = impl_->header();

  // An existing object is checked against the spec, under the name of what it is.
  const auto found = [&](const DirEntry& e) -> void* {
    check_match(label_of(static_cast<ObjectKind>(e.kind), name), e, spec);
    return impl_->at(e.offset);
  };
  if (const Lookup l = look_up(*impl_, name); l.found) return found(*l.found);

  // Create under the directory lock. A creator killed here leaves at worst
  // leaked heap space and an unpublished entry: the count is published last.
  auto dir = detail::SegmentAccess::make<Lock>(
      &h.directory_lock, keepalive(),
      detail::Label{impl_->name(), impl_->name(), "directory of " + detail::segment_label(impl_->name()).text});
  lock_directory(dir, label_of(spec.kind, name));
  std::lock_guard guard(dir, std::adopt_lock);
  const Lookup l = look_up(*impl_, name);
  if (l.found) return found(*l.found);
  const std::uint32_t n = l.count;
  const std::uint64_t off = place_object(*impl_, l, name, spec.bytes);
  // Space is claimed before it is written, so it is never handed out twice.
  h.heap_top.store(off + spec.bytes, std::memory_order_release);
  void* body = impl_->at(off);
  std::memset(body, 0, spec.bytes);
  if (spec.init != nullptr) spec.init(body, spec.init_arg);

  DirEntry& e = impl_->entry(n);
  std::memset(&e, 0, sizeof e);
  std::memcpy(e.name, name.data(), name.size());
  std::strncpy(e.type_name, spec.type_name, sizeof e.type_name - 1);
  e.type_hash = fnv1a(spec.type_name);
  e.kind = static_cast<std::uint32_t>(spec.kind);
  e.layout_version = spec.layout_version;
  e.elem_size = spec.elem_size;
  e.elem_align = spec.elem_align;
  e.count = spec.count;
  e.offset = off;
  e.bytes = spec.bytes;
  h.object_count.store(n + 1, std::memory_order_release);
  return body;
}

}  // namespace ipckit
