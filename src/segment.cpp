// Segments: creation, opening, validation and the object directory.
#include "ipckit/segment.hpp"

#include "ipckit/detail/segment_access.hpp"

#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

#include "segment_layout.hpp"
#include "shm_file.hpp"

namespace ipckit {
namespace detail {
namespace {

constexpr std::size_t kMaxSegmentName = 200;
constexpr std::uint64_t kMaxSegmentSize = std::uint64_t{1} << 40;
constexpr std::uint32_t kMaxObjects = 1'000'000;
constexpr std::uint64_t kDirectoryOffset = sizeof(SegmentHeader);

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::uint64_t fnv1a(const char* s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s != '\0'; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ULL;
  return h;
}

// One read of a plain field another process may be writing: the value is
// checked and then used, so it must not be fetched twice.
template <class T>
T read_once(const T& x) {
  return *static_cast<const volatile T*>(&x);
}

void check_segment_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    throw InvalidName(std::string(name), "invalid segment name '" + std::string(name) + "': " + why +
                                             "; use 1-" + std::to_string(kMaxSegmentName) +
                                             " printable characters without '/'");
  };
  if (name.empty()) bad("it is empty");
  if (name.size() > kMaxSegmentName) bad("it is " + std::to_string(name.size()) + " characters long");
  if (name == "." || name == "..") bad("it is a directory name");
  for (char c : name) {
    if (c == '/') bad("it contains '/'");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("it contains a control character");
  }
}

void check_object_name(std::string_view seg, std::string_view name) {
  auto bad = [&](const std::string& why) {
    throw InvalidName(std::string(name), "invalid object name '" + std::string(name) + "' in " + seg_label(seg) +
                                             ": " + why + "; use 1-" + std::to_string(kMaxObjectName) +
                                             " printable characters");
  };
  if (name.empty()) bad("it is empty");
  if (name.size() > kMaxObjectName) bad("it is " + std::to_string(name.size()) + " characters long");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("it contains a control character");
}

std::uint64_t directory_bytes(std::uint32_t max_objects) {
  return align_up(sizeof(SegmentHeader) + std::uint64_t{max_objects} * sizeof(DirEntry), 64);
}

}  // namespace

class SegmentImpl {
 public:
  SegmentImpl(std::string name, void* base, std::uint64_t size, mode_t mode, uid_t uid)
      : name_(std::move(name)), base_(static_cast<char*>(base)), size_(size), mode_(mode), uid_(uid) {}
  ~SegmentImpl() { ::munmap(base_, size_); }
  SegmentImpl(const SegmentImpl&) = delete;
  SegmentImpl& operator=(const SegmentImpl&) = delete;

  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base_); }
  // Entry `i` of the directory; i < max_objects_, where the copied geometry
  // (not the header's fields) says the directory lies.
  DirEntry& entry(std::uint32_t i) const { return reinterpret_cast<DirEntry*>(base_ + kDirectoryOffset)[i]; }
  char* at(std::uint64_t off) const { return base_ + off; }

  [[noreturn]] void corrupt(const std::string& why) const {
    throw CorruptSegment(name_, seg_label(name_) + " is corrupt: " + why + "; remove it (ipckit rm " + name_ +
                                    ") and recreate it");
  }

  std::string name_;
  char* base_;
  // Geometry: validated once when the segment is mapped and never re-read
  // from it, so a stray write to the header cannot move the directory or
  // the heap under this handle.
  std::uint64_t size_;
  std::uint32_t max_objects_ = 0;
  std::uint64_t heap_offset_ = 0;
  mode_t mode_;
  uid_t uid_;
};

namespace {

std::shared_ptr<SegmentImpl> map_segment(std::string_view name, int fd, std::uint64_t size, const struct stat& st) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) throw_errno(errno, name, "mmap");
  return std::make_shared<SegmentImpl>(std::string(name), base, size, st.st_mode & 0777, st.st_uid);
}

// Everything an opener needs from the header, each field read once.
struct HeaderSnapshot {
  std::uint64_t magic, size, directory_offset, heap_offset, heap_top;
  std::uint32_t layout_version, header_bytes, ready, max_objects, object_count;
};

HeaderSnapshot snapshot(const SegmentHeader& h) {
  return {read_once(h.magic),
          read_once(h.size),
          read_once(h.directory_offset),
          read_once(h.heap_offset),
          h.heap_top.load(std::memory_order_acquire),
          read_once(h.layout_version),
          read_once(h.header_bytes),
          h.ready.load(std::memory_order_acquire),
          read_once(h.max_objects),
          h.object_count.load(std::memory_order_acquire)};
}

// A file under the name that is not a complete segment. This ipckit links a
// segment under its name only once it is complete, so such a file was put
// there by someone else: never replaced, only reported.
[[noreturn]] void throw_not_initialised(std::string_view name, const struct stat& st, const std::string& what) {
  std::string holders;
  for (int pid : lock_holders(st)) holders += (holders.empty() ? "" : ", ") + std::to_string(pid);
  throw CorruptSegment(
      std::string(name),
      seg_label(name) + " (" + shm_path(name) + ") is not an initialised ipckit segment: " + what +
          ". ipckit names a segment only once it is complete, so another program (or an older ipckit whose creator "
          "died or is still at work) put this file there" +
          (holders.empty() ? std::string() : "; process " + holders + " holds a lock on it") +
          ". Remove it (ipckit rm " + std::string(name) + ") and create the segment again");
}

// Structure checks on a mapped header; throws CorruptSegment.
void validate_header(const HeaderSnapshot& h, std::string_view name, const struct stat& st) {
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  auto corrupt = [&](const std::string& why) {
    throw CorruptSegment(std::string(name), seg_label(name) + " is corrupt: " + why +
                                                "; remove it (ipckit rm " + std::string(name) + ") and recreate it");
  };
  if (h.magic == 0 && h.ready != kReady) throw_not_initialised(name, st, "its header is blank");
  if (h.magic != kSegmentMagic) corrupt("it is not an ipckit segment (bad magic number)");
  if (h.layout_version > kSegmentLayout)
    throw CorruptSegment(std::string(name), seg_label(name) + " has layout version " + std::to_string(h.layout_version) +
                                                ", newer than this ipckit understands (" + std::to_string(kSegmentLayout) +
                                                "); upgrade ipckit in this program");
  if (h.layout_version != kSegmentLayout) corrupt("unknown layout version " + std::to_string(h.layout_version));
  if (h.ready != kReady) throw_not_initialised(name, st, "its header is incomplete");
  if (h.header_bytes != sizeof(SegmentHeader)) corrupt("unexpected header size");
  if (h.size != file_size)
    corrupt("it says it is " + std::to_string(h.size) + " bytes but is " + std::to_string(file_size) + " (truncated?)");
  if (h.directory_offset != kDirectoryOffset || h.max_objects == 0 || h.max_objects > kMaxObjects ||
      h.heap_offset != directory_bytes(h.max_objects) || h.heap_offset > h.size)
    corrupt("its directory lies outside the segment");
  if (h.heap_top < h.heap_offset || h.heap_top > h.size) corrupt("its allocation pointer lies outside the segment");
  if (h.object_count > h.max_objects) corrupt("its object count exceeds its directory");
}

void check_create_args(std::string_view name, std::size_t size, const SegmentOptions& opt) {
  check_segment_name(name);
  if (opt.max_objects == 0 || opt.max_objects > kMaxObjects)
    throw InvalidArgument(std::string(name), seg_label(name) + ": max_objects must be between 1 and 1000000");
  const std::uint64_t min = Segment::min_size(opt.max_objects);
  if (size < min || size > kMaxSegmentSize)
    throw InvalidArgument(std::string(name), seg_label(name) + ": size " + std::to_string(size) + " is out of range; use " +
                                                 std::to_string(min) + " bytes (for " + std::to_string(opt.max_objects) +
                                                 " objects) up to 1 TiB");
}

bool name_taken(std::string_view name) {
  struct stat st{};
  return ::lstat(shm_path(name).c_str(), &st) == 0;
}

void run_hook(CreateStage stage) {
  if (g_create_hook != nullptr) [[unlikely]] g_create_hook(stage);
}

std::shared_ptr<SegmentImpl> create_segment(std::string_view name, std::size_t size, const SegmentOptions& opt) {
  check_create_args(name, size, opt);
  // Cheap answers before anything is reserved; publish() decides for real.
  if (name_taken(name)) throw_errno(EEXIST, name, "create");
  check_space(name, size);
  run_hook(CreateStage::SpaceChecked);

  UniqueFd fd = create_unnamed(name, size);
  run_hook(CreateStage::Reserved);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno(errno, name, "fstat");
  auto impl = map_segment(name, fd.get(), size, st);
  auto& h = impl->header();
  const ThreadIdentity me = this_process();
  h.magic = kSegmentMagic;
  h.layout_version = kSegmentLayout;
  h.header_bytes = sizeof(SegmentHeader);
  h.size = size;
  h.max_objects = opt.max_objects;
  h.directory_offset = kDirectoryOffset;
  h.heap_offset = directory_bytes(opt.max_objects);
  h.heap_top.store(h.heap_offset, std::memory_order_relaxed);
  h.creator_pid = static_cast<std::int32_t>(me.tid);
  h.creator_start_ticks = me.start_ticks;
  h.created_unix = std::time(nullptr);
  h.ready.store(kReady, std::memory_order_release);
  impl->max_objects_ = opt.max_objects;
  impl->heap_offset_ = directory_bytes(opt.max_objects);
  run_hook(CreateStage::Initialised);

  if (!publish(fd.get(), name, opt.mode)) throw_errno(EEXIST, name, "create");
  impl->mode_ = opt.mode & 0777;
  return impl;
}

std::shared_ptr<SegmentImpl> open_segment(std::string_view name, const Trust& trust) {
  check_segment_name(name);
  CheckedFile f = open_checked(name, trust);
  const auto file_size = static_cast<std::uint64_t>(f.st.st_size);
  if (file_size < sizeof(SegmentHeader))
    throw_not_initialised(name, f.st, "it is " + std::to_string(file_size) + " bytes long");
  if (file_size > kMaxSegmentSize)
    throw CorruptSegment(std::string(name), seg_label(name) + " is " + std::to_string(file_size) +
                                                " bytes long, larger than any segment; remove it (ipckit rm " +
                                                std::string(name) + ")");
  auto impl = map_segment(name, f.fd.get(), file_size, f.st);
  const HeaderSnapshot snap = snapshot(impl->header());
  validate_header(snap, name, f.st);
  impl->max_objects_ = snap.max_objects;
  impl->heap_offset_ = snap.heap_offset;
  return impl;
}

}  // namespace
}  // namespace detail

using detail::DirEntry;

const char* to_string(ObjectKind kind) noexcept {
  switch (kind) {
    case ObjectKind::Value: return "Value";
    case ObjectKind::Array: return "Array";
    case ObjectKind::Lock: return "Lock";
    case ObjectKind::RLock: return "RLock";
    case ObjectKind::Condition: return "Condition";
    case ObjectKind::Semaphore: return "Semaphore";
    case ObjectKind::BoundedSemaphore: return "BoundedSemaphore";
    case ObjectKind::Event: return "Event";
    case ObjectKind::Barrier: return "Barrier";
    case ObjectKind::Queue: return "Queue";
    case ObjectKind::JoinableQueue: return "JoinableQueue";
    case ObjectKind::PriorityQueue: return "PriorityQueue";
  }
  return "unknown";
}

namespace {
// How messages name a kind: "value 'counter' in segment 'demo'".
const char* noun(ObjectKind kind) noexcept {
  switch (kind) {
    case ObjectKind::Value: return "value";
    case ObjectKind::Array: return "array";
    case ObjectKind::Lock: return "lock";
    case ObjectKind::RLock: return "rlock";
    case ObjectKind::Condition: return "condition";
    case ObjectKind::Semaphore: return "semaphore";
    case ObjectKind::BoundedSemaphore: return "bounded semaphore";
    case ObjectKind::Event: return "event";
    case ObjectKind::Barrier: return "barrier";
    case ObjectKind::Queue: return "queue";
    case ObjectKind::JoinableQueue: return "joinable queue";
    case ObjectKind::PriorityQueue: return "priority queue";
  }
  return "object";
}

// What DirEntry::count means for a kind, for mismatch messages.
std::string count_words(ObjectKind kind, std::uint64_t n) {
  switch (kind) {
    case ObjectKind::Semaphore:
    case ObjectKind::BoundedSemaphore: return "initial value " + std::to_string(n);
    case ObjectKind::Barrier: return std::to_string(n) + " parties";
    case ObjectKind::Condition: return "its lock at offset " + std::to_string(n);
    case ObjectKind::Queue:
    case ObjectKind::JoinableQueue: return "capacity " + std::to_string(n) + " bytes";
    case ObjectKind::PriorityQueue: return std::to_string(n) + " slots";
    default: return std::to_string(n) + " elements";
  }
}
}  // namespace


std::size_t Segment::min_size(std::uint32_t max_objects) {
  return detail::directory_bytes(max_objects) + 4096;
}

Segment Segment::create(std::string_view name, std::size_t size, SegmentOptions options) {
  return Segment(detail::create_segment(name, size, options));
}

Segment Segment::open(std::string_view name, OpenOptions options) {
  return Segment(detail::open_segment(name, {options.mode, options.allow_owner, options.any_owner}));
}

Segment Segment::open_or_create(std::string_view name, std::size_t size, SegmentOptions options) {
  detail::check_create_args(name, size, options);
  const detail::Trust trust{options.mode, options.allow_owner, false};
  // Each round either returns or saw the name appear or vanish in between:
  // only removals racing with us make it go round again.
  for (int attempt = 0; attempt < 100; ++attempt) {
    try {
      return Segment(detail::open_segment(name, trust));
    } catch (const NotFound&) {
    }
    try {
      return Segment(detail::create_segment(name, size, options));
    } catch (const AlreadyExists&) {
      // Another process published it first: open theirs.
    } catch (const OutOfSpace&) {
      // Racing creators each reserve the size until one publishes: if one
      // did, use it; else there is really no room.
      if (!detail::name_taken(name)) throw;
    }
  }
  throw SystemError(std::string(name), detail::seg_label(name) + ": open_or_create kept racing with removals of " +
                                           detail::shm_path(name) + "; retry");
}

bool Segment::remove(std::string_view name) {
  detail::check_segment_name(name);
  if (::unlink(detail::shm_path(name).c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  detail::throw_errno(errno, name, "remove");
}

bool Segment::exists(std::string_view name) {
  detail::check_segment_name(name);
  return detail::name_taken(name);
}

std::vector<std::string> Segment::list() {
  std::vector<std::string> names;
  DIR* d = ::opendir(detail::shm_dir().c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.starts_with("ipckit.") && n.size() > 7) names.emplace_back(n.substr(7));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

// The allocation pointer, checked against the handle's own geometry.
std::uint64_t checked_top(const detail::SegmentImpl& impl) {
  const std::uint64_t top = impl.header().heap_top.load(std::memory_order_acquire);
  if (top < impl.heap_offset_ || top > impl.size_)
    impl.corrupt("its allocation pointer (" + std::to_string(top) + ") lies outside its heap (" +
                 std::to_string(impl.heap_offset_) + " to " + std::to_string(impl.size_) + ")");
  return top;
}

// The number of published entries, checked against the handle's geometry.
std::uint32_t checked_count(const detail::SegmentImpl& impl) {
  const std::uint32_t n = impl.header().object_count.load(std::memory_order_acquire);
  if (n > impl.max_objects_)
    impl.corrupt("its object count (" + std::to_string(n) + ") exceeds its directory (" +
                 std::to_string(impl.max_objects_) + " entries)");
  return n;
}

// A published entry, copied out of the segment (so that it cannot change
// between check and use) and checked against the geometry and `top`.
DirEntry checked_entry(const detail::SegmentImpl& impl, std::uint32_t i, std::uint64_t top) {
  DirEntry e;
  std::memcpy(&e, &impl.entry(i), sizeof e);
  const bool named = std::memchr(e.name, '\0', sizeof e.name) != nullptr &&
                     std::memchr(e.type_name, '\0', sizeof e.type_name) != nullptr;
  if (!named || e.offset < impl.heap_offset_ || e.offset % 64 != 0 || e.bytes > top || e.offset > top - e.bytes ||
      e.kind < 1 || e.kind > kLastObjectKind)
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
  r.objects_end = impl.heap_offset_;
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

}  // namespace

const std::string& Segment::name() const noexcept { return impl_->name_; }
std::size_t Segment::size() const noexcept { return impl_->size_; }
std::size_t Segment::free_bytes() const noexcept {
  const std::uint64_t top = impl_->header().heap_top.load(std::memory_order_relaxed);
  return top >= impl_->heap_offset_ && top <= impl_->size_ ? impl_->size_ - top : 0;
}
std::shared_ptr<const void> Segment::keepalive() const noexcept { return impl_; }

std::optional<std::uint64_t> Segment::offset_of(const void* p) const noexcept {
  const auto* c = static_cast<const char*>(p);
  if (c < impl_->base_ || c >= impl_->base_ + impl_->size_) return std::nullopt;
  return static_cast<std::uint64_t>(c - impl_->base_);
}

std::string Segment::label(ObjectKind kind, std::string_view name) const {
  return std::string(noun(kind)) + " '" + std::string(name) + "' in segment '" + impl_->name_ + "'";
}

SegmentInfo Segment::info() const {
  const auto& h = impl_->header();
  SegmentInfo i;
  i.name = impl_->name_;
  i.size = impl_->size_;
  i.used = std::clamp<std::uint64_t>(h.heap_top.load(std::memory_order_relaxed), impl_->heap_offset_, impl_->size_);
  i.objects = std::min(h.object_count.load(std::memory_order_acquire), impl_->max_objects_);
  i.max_objects = impl_->max_objects_;
  i.creator_pid = detail::read_once(h.creator_pid);
  const std::uint64_t start = detail::read_once(h.creator_start_ticks);
  i.creator_alive = start != 0 && i.creator_pid > 0 && detail::process_start_ticks(i.creator_pid) == start;
  i.created_unix = detail::read_once(h.created_unix);
  i.mode = impl_->mode_;
  i.owner_uid = impl_->uid_;
  return i;
}

std::vector<ObjectInfo> Segment::objects() const {
  std::vector<ObjectInfo> out;
  const std::uint64_t top = checked_top(*impl_);
  const std::uint32_t n = checked_count(*impl_);
  for (std::uint32_t i = 0; i < n; ++i) out.push_back(to_info(checked_entry(*impl_, i, top)));
  return out;
}

const void* Segment::object_body(std::string_view name, ObjectInfo* info) const {
  const Lookup l = look_up(*impl_, name);
  if (!l.found)
    throw NotFound(std::string(name), "no object '" + std::string(name) + "' in " + detail::seg_label(impl_->name_) +
                                          "; `ipckit inspect " + impl_->name_ + "` lists what is there");
  if (info != nullptr) *info = to_info(*l.found);
  return impl_->at(l.found->offset);
}

std::optional<LockHolder> Segment::holder_of(std::string_view name) const {
  auto* body = const_cast<void*>(object_body(name));
  auto view = detail::SegmentAccess::make<Lock>(static_cast<detail::LockState*>(body), keepalive(), std::string(name));
  return view.holder();
}

namespace {

// Takes the directory lock for at most kDirectoryLockWait: its holder may
// be stopped (SIGSTOP, a debugger), and creation must not wait for it forever.
void lock_directory(Lock& dir, const std::string& what) {
  if (dir.try_lock_for(kDirectoryLockWait)) return;
  std::string who = "a process that has just let it go";
  if (auto h = dir.holder())
    who = "pid " + std::to_string(h->pid) + " (thread " + std::to_string(h->tid) + (h->alive ? ", alive)" : ", dead)");
  throw Timeout(what, "cannot create " + what + ": the segment's directory lock has been held by " + who +
                          " for more than " + std::to_string(kDirectoryLockWait.count()) +
                          " s; that process is probably stopped (SIGSTOP, Ctrl-Z, a debugger) while creating an "
                          "object: resume or end it, then retry");
}

}  // namespace

void* Segment::find_or_create(std::string_view name, const detail::ObjectSpec& spec) {
  detail::check_object_name(impl_->name_, name);
  auto& h = impl_->header();

  const auto check_match = [&](const DirEntry& e) -> void* {
    const std::string what = label(static_cast<ObjectKind>(e.kind), name);
    if (e.kind != static_cast<std::uint32_t>(spec.kind))
      throw TypeMismatch(std::string(name), "'" + std::string(name) + "' in segment '" + impl_->name_ + "' is a " +
                                                to_string(static_cast<ObjectKind>(e.kind)) + ", not a " +
                                                to_string(spec.kind) + "; use another name or open it as a " +
                                                to_string(static_cast<ObjectKind>(e.kind)));
    if (e.type_hash != detail::fnv1a(spec.type_name) || e.elem_size != spec.elem_size ||
        e.elem_align != spec.elem_align)
      throw TypeMismatch(std::string(name), what + " holds type '" + e.type_name + "' (" + std::to_string(e.elem_size) +
                                                " bytes), not '" + spec.type_name + "' (" +
                                                std::to_string(spec.elem_size) +
                                                " bytes); open it with the type it was created with");
    if (e.layout_version != spec.layout_version)
      throw TypeMismatch(std::string(name), what + " has layout version " + std::to_string(e.layout_version) +
                                                ", this program expects " + std::to_string(spec.layout_version) +
                                                "; build every program with the same ipckit");
    if (e.count != spec.count)
      throw TypeMismatch(std::string(name), what + " was created with " + count_words(spec.kind, e.count) + ", not " +
                                                count_words(spec.kind, spec.count) + "; open it as it was created");
    if (e.bytes != spec.bytes) throw CorruptSegment(std::string(name), what + " has an inconsistent size; recreate the segment");
    return impl_->at(e.offset);
  };

  if (const Lookup l = look_up(*impl_, name); l.found) return check_match(*l.found);

  // Create under the directory lock. A creator killed here leaves at worst
  // leaked heap space and an unpublished entry: the count is published last.
  auto dir = detail::SegmentAccess::make<Lock>(&h.directory_lock, keepalive(),
                                               "directory of " + detail::seg_label(impl_->name_));
  lock_directory(dir, label(spec.kind, name));
  std::lock_guard guard(dir, std::adopt_lock);
  const Lookup l = look_up(*impl_, name);
  if (l.found) return check_match(*l.found);
  const std::uint32_t n = l.count;
  if (n >= impl_->max_objects_)
    throw OutOfSpace(std::string(name), detail::seg_label(impl_->name_) + " cannot hold object '" + std::string(name) +
                                            "': its directory is full (" + std::to_string(impl_->max_objects_) +
                                            " objects); create the segment with a larger SegmentOptions::max_objects");
  const std::uint64_t top = checked_top(*impl_);
  // The pointer only grows, past every object: one moved back would hand
  // out live objects' memory again.
  if (top < l.objects_end)
    impl_->corrupt("its allocation pointer (" + std::to_string(top) + ") lies below the end of its objects (" +
                   std::to_string(l.objects_end) + ")");
  const std::uint64_t off = detail::align_up(top, 64);
  if (off > impl_->size_ || spec.bytes > impl_->size_ - off)
    throw OutOfSpace(std::string(name), detail::seg_label(impl_->name_) + " cannot hold object '" + std::string(name) +
                                            "': it needs " + std::to_string(spec.bytes) + " bytes and " +
                                            std::to_string(impl_->size_ > off ? impl_->size_ - off : 0) +
                                            " are left; create the segment larger");
  // Space is claimed before it is written, so it is never handed out twice.
  h.heap_top.store(off + spec.bytes, std::memory_order_release);
  void* body = impl_->at(off);
  std::memset(body, 0, spec.bytes);
  if (spec.init != nullptr) spec.init(body, spec.init_arg);

  DirEntry& e = impl_->entry(n);
  std::memset(&e, 0, sizeof e);
  std::memcpy(e.name, name.data(), name.size());
  std::strncpy(e.type_name, spec.type_name, sizeof e.type_name - 1);
  e.type_hash = detail::fnv1a(spec.type_name);
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

Barrier Segment::barrier(std::string_view name, std::uint32_t parties) {
  if (parties < 1 || parties > detail::kBarrierMaxParties)
    throw InvalidArgument(std::string(name), label(ObjectKind::Barrier, name) + ": " + std::to_string(parties) +
                                                 " parties is out of range; use 1 to " +
                                                 std::to_string(detail::kBarrierMaxParties));
  // Layout 2: rounds are sealed by their last arrival.
  auto spec = detail::state_spec<detail::BarrierState>(ObjectKind::Barrier, "ipckit::Barrier", 2, parties);
  spec.init = [](void* body, const void* arg) {
    static_cast<detail::BarrierState*>(body)->parties = *static_cast<const std::uint32_t*>(arg);
  };
  spec.init_arg = &parties;
  return Barrier(static_cast<detail::BarrierState*>(find_or_create(name, spec)), keepalive(),
                 label(ObjectKind::Barrier, name));
}

detail::QueueCore Segment::open_queue(std::string_view name, ObjectKind kind, const char* type_name,
                                     const QueueOptions& options) {
  const std::string what = label(kind, name);
  if (options.capacity_bytes < 64 || options.capacity_bytes > detail::kMaxQueueCapacity)
    throw InvalidArgument(std::string(name), what + ": capacity_bytes " + std::to_string(options.capacity_bytes) +
                                                 " is out of range; use 64 bytes to 128 MiB");
  std::uint64_t capacity = 64;
  while (capacity < options.capacity_bytes) capacity <<= 1;
  // A record (8-byte header + payload, padded) must fit twice over: one may
  // be skipped at the ring's end to keep the next contiguous.
  const std::uint64_t largest = capacity / 2 - detail::kRecordHeader;
  const std::uint64_t max_message = options.max_message == 0 ? capacity / 4 : options.max_message;
  if (max_message > largest)
    throw InvalidArgument(std::string(name), what + ": max_message " + std::to_string(max_message) +
                                                 " cannot fit a ring of " + std::to_string(capacity) +
                                                 " bytes; use at most " + std::to_string(largest) +
                                                 " or a larger capacity_bytes");
  auto spec = detail::ObjectSpec{kind, type_name, 0, 1, capacity, detail::kQueueLayout,
                                 sizeof(detail::QueueState) + capacity};
  struct Init { std::uint64_t capacity, max_message, max_items; bool joinable; } init{
      capacity, max_message, options.max_items, kind == ObjectKind::JoinableQueue};
  spec.init = [](void* body, const void* arg) {
    const auto& i = *static_cast<const Init*>(arg);
    auto* q = static_cast<detail::QueueState*>(body);
    q->capacity = i.capacity;
    q->max_message = i.max_message;
    q->max_items = i.max_items;
    q->joinable = i.joinable ? 1 : 0;
  };
  spec.init_arg = &init;
  auto* q = static_cast<detail::QueueState*>(find_or_create(name, spec));
  if (q->capacity != capacity || q->max_message != max_message || q->max_items != options.max_items)
    throw TypeMismatch(std::string(name), what + " was created with max_message " + std::to_string(q->max_message) +
                                              " and max_items " + std::to_string(q->max_items) + ", not " +
                                              std::to_string(max_message) + " and " +
                                              std::to_string(options.max_items) + "; open it with its options");
  return detail::QueueCore(q, keepalive(), what,
                           detail::QueueGeometry{capacity, max_message, options.max_items,
                                                 kind == ObjectKind::JoinableQueue});
}

}  // namespace ipckit
