// Segments: creation, opening, validation and the object directory.
#include "ipckit/segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "segment_layout.hpp"

namespace ipckit {
namespace detail {
namespace {

constexpr std::size_t kMaxSegmentName = 200;
constexpr const char* kShmPrefix = "/ipckit.";
constexpr const char* kShmDir = "/dev/shm/";
constexpr std::uint64_t kMaxSegmentSize = std::uint64_t{1} << 40;
constexpr auto kInitWait = std::chrono::seconds(3);

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::uint64_t fnv1a(const char* s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s != '\0'; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ULL;
  return h;
}

std::string seg_label(std::string_view name) { return "segment '" + std::string(name) + "'"; }
std::string shm_name(std::string_view name) { return kShmPrefix + std::string(name); }

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

[[noreturn]] void throw_errno(int err, std::string_view seg, const std::string& action) {
  const std::string what = seg_label(seg) + ": " + action + " failed: " + std::system_category().message(err);
  const std::error_code code(err, std::generic_category());
  switch (err) {
    case ENOENT:
      throw NotFound(std::string(seg), seg_label(seg) + " does not exist; create it first (Segment::create or open_or_create)", code);
    case EEXIST:
      throw AlreadyExists(std::string(seg), seg_label(seg) + " already exists; open it, or remove it first (ipckit rm " + std::string(seg) + ")", code);
    case EACCES:
    case EPERM:
      throw PermissionDenied(std::string(seg), what + "; run as the segment's owner, or have the creator pass SegmentOptions::mode", code);
    case ENAMETOOLONG:
    case EINVAL:
      throw InvalidName(std::string(seg), what, code);
    case ENOSPC:
    case ENOMEM:
      throw OutOfSpace(std::string(seg), what + "; free memory in /dev/shm or ask for a smaller segment", code);
    default:
      throw SystemError(std::string(seg), what, code);
  }
}

// RAII for the descriptor while a segment is being opened.
struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

}  // namespace

class SegmentImpl {
 public:
  SegmentImpl(std::string name, void* base, std::size_t size, mode_t mode, uid_t uid)
      : name_(std::move(name)), base_(static_cast<char*>(base)), size_(size), mode_(mode), uid_(uid) {}
  ~SegmentImpl() { ::munmap(base_, size_); }
  SegmentImpl(const SegmentImpl&) = delete;
  SegmentImpl& operator=(const SegmentImpl&) = delete;

  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base_); }
  DirEntry* entries() const { return reinterpret_cast<DirEntry*>(base_ + header().directory_offset); }
  char* at(std::uint64_t off) const { return base_ + off; }

  std::string name_;
  char* base_;
  std::size_t size_;
  mode_t mode_;
  uid_t uid_;
};

namespace {

std::uint64_t directory_bytes(std::uint32_t max_objects) {
  return align_up(sizeof(SegmentHeader) + std::uint64_t{max_objects} * sizeof(DirEntry), 64);
}

// Structure checks on a mapped, initialised header; throws CorruptSegment.
void validate_header(const SegmentHeader& h, std::string_view name, std::uint64_t file_size) {
  auto corrupt = [&](const std::string& why) {
    throw CorruptSegment(std::string(name), seg_label(name) + " is corrupt: " + why +
                                                "; remove it (ipckit rm " + std::string(name) + ") and recreate it");
  };
  if (h.magic != kSegmentMagic) corrupt("it is not an ipckit segment (bad magic number)");
  if (h.layout_version > kSegmentLayout)
    throw CorruptSegment(std::string(name), seg_label(name) + " has layout version " + std::to_string(h.layout_version) +
                                                ", newer than this ipckit understands (" + std::to_string(kSegmentLayout) +
                                                "); upgrade ipckit in this program");
  if (h.layout_version != kSegmentLayout) corrupt("unknown layout version " + std::to_string(h.layout_version));
  if (h.header_bytes != sizeof(SegmentHeader)) corrupt("unexpected header size");
  if (h.size != file_size)
    corrupt("it says it is " + std::to_string(h.size) + " bytes but is " + std::to_string(file_size) + " (truncated?)");
  if (h.directory_offset != sizeof(SegmentHeader) || h.max_objects == 0 ||
      h.heap_offset != directory_bytes(h.max_objects) || h.heap_offset > h.size)
    corrupt("its directory lies outside the segment");
  const std::uint64_t top = h.heap_top.load(std::memory_order_acquire);
  if (top < h.heap_offset || top > h.size) corrupt("its allocation pointer lies outside the segment");
  if (h.object_count.load(std::memory_order_acquire) > h.max_objects) corrupt("its object count exceeds its directory");
}

std::shared_ptr<SegmentImpl> map_segment(std::string_view name, int fd, std::uint64_t size) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) throw_errno(errno, name, "mmap");
  struct stat st{};
  ::fstat(fd, &st);
  return std::make_shared<SegmentImpl>(std::string(name), base, size, st.st_mode & 07777, st.st_uid);
}

std::shared_ptr<SegmentImpl> create_segment(std::string_view name, std::size_t size, const SegmentOptions& opt) {
  check_segment_name(name);
  if (opt.max_objects == 0 || opt.max_objects > 1'000'000)
    throw InvalidArgument(std::string(name), seg_label(name) + ": max_objects must be between 1 and 1000000");
  const std::uint64_t min = Segment::min_size(opt.max_objects);
  if (size < min || size > kMaxSegmentSize)
    throw InvalidArgument(std::string(name), seg_label(name) + ": size " + std::to_string(size) + " is out of range; use " +
                                                 std::to_string(min) + " bytes (for " + std::to_string(opt.max_objects) +
                                                 " objects) up to 1 TiB");
  const std::string shm = shm_name(name);
  Fd f;
  f.fd = ::shm_open(shm.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, opt.mode & 0777);
  if (f.fd < 0) throw_errno(errno, name, "create");
  // Openers that see the name before we finish wait on this flock; if we die
  // half-way the kernel drops it and they can tell the segment was abandoned.
  ::flock(f.fd, LOCK_EX);
  try {
    if (::fchmod(f.fd, opt.mode & 0777) != 0) throw_errno(errno, name, "fchmod");  // shm_open honours umask
    if (::ftruncate(f.fd, static_cast<off_t>(size)) != 0) throw_errno(errno, name, "resize");
    auto impl = map_segment(name, f.fd, size);
    auto& h = impl->header();
    h.magic = kSegmentMagic;
    h.layout_version = kSegmentLayout;
    h.header_bytes = sizeof(SegmentHeader);
    h.size = size;
    h.max_objects = opt.max_objects;
    h.directory_offset = sizeof(SegmentHeader);
    h.heap_offset = directory_bytes(opt.max_objects);
    h.heap_top.store(h.heap_offset, std::memory_order_relaxed);
    h.creator_pid = ::getpid();
    h.creator_start_ticks = process_start_ticks(::getpid());
    h.created_unix = std::time(nullptr);
    h.ready.store(kReady, std::memory_order_release);
    return impl;
  } catch (...) {
    ::shm_unlink(shm.c_str());
    throw;
  }
}

// Opens and validates, waiting (bounded) for a creator still at work. A
// segment whose creator died mid-way is reported as CorruptSegment, or, with
// `repair_abandoned`, unlinked so that the caller can create it anew (then
// nullptr is returned).
std::shared_ptr<SegmentImpl> open_segment(std::string_view name, bool repair_abandoned) {
  check_segment_name(name);
  const std::string shm = shm_name(name);
  Fd f;
  f.fd = ::shm_open(shm.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (f.fd < 0) throw_errno(errno, name, "open");
  const auto give_up = std::chrono::steady_clock::now() + kInitWait;
  int unready_checks = 0;
  for (;;) {
    struct stat st{};
    if (::fstat(f.fd, &st) != 0) throw_errno(errno, name, "fstat");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size >= sizeof(SegmentHeader)) {
      auto impl = map_segment(name, f.fd, file_size);
      if (impl->header().ready.load(std::memory_order_acquire) == kReady) {
        validate_header(impl->header(), name, file_size);
        return impl;
      }
      if (impl->header().magic != 0 && impl->header().magic != kSegmentMagic)
        validate_header(impl->header(), name, file_size);  // garbage, not a creation in progress
    }
    // Not initialised yet. A live creator holds LOCK_EX until it is done.
    if (::flock(f.fd, LOCK_EX | LOCK_NB) == 0) {
      // Nobody is initialising it. Seen twice, 50 ms apart, it was abandoned
      // (the first time the creator may sit between shm_open and flock).
      if (++unready_checks >= 2) {
        if (!repair_abandoned)
          throw CorruptSegment(std::string(name), seg_label(name) +
                                                      " was never initialised: its creator died while creating it; "
                                                      "remove it (ipckit rm " + std::string(name) +
                                                      ") or use Segment::open_or_create, which replaces it");
        // Unlink only if the name still means this object (another opener may
        // have replaced it already); our LOCK_EX keeps them from racing us.
        struct stat by_name{};
        if (::stat((kShmDir + shm.substr(1)).c_str(), &by_name) == 0 && by_name.st_ino == st.st_ino)
          ::shm_unlink(shm.c_str());
        return nullptr;
      }
      ::flock(f.fd, LOCK_UN);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } else {
      // A creator is at work: its flock is dropped when it finishes or dies.
      ::flock(f.fd, LOCK_SH);
      ::flock(f.fd, LOCK_UN);
    }
    if (std::chrono::steady_clock::now() > give_up)
      throw CorruptSegment(std::string(name), seg_label(name) + " is still not initialised after " +
                                                  std::to_string(kInitWait.count()) + " s; remove it (ipckit rm " +
                                                  std::string(name) + ") and recreate it");
  }
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

Segment Segment::open(std::string_view name) { return Segment(detail::open_segment(name, false)); }

Segment Segment::open_or_create(std::string_view name, std::size_t size, SegmentOptions options) {
  detail::check_segment_name(name);
  for (int attempt = 0;; ++attempt) {
    try {
      return Segment(detail::create_segment(name, size, options));
    } catch (const AlreadyExists&) {
    }
    try {
      if (auto impl = detail::open_segment(name, true)) return Segment(std::move(impl));
    } catch (const NotFound&) {
      // Removed between our create and open: try again.
    }
    if (attempt > 100)
      throw SystemError(std::string(name), detail::seg_label(name) + ": open_or_create kept racing with removals; retry");
  }
}

bool Segment::remove(std::string_view name) {
  detail::check_segment_name(name);
  if (::shm_unlink(detail::shm_name(name).c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  detail::throw_errno(errno, name, "remove");
}

bool Segment::exists(std::string_view name) {
  detail::check_segment_name(name);
  struct stat st{};
  return ::stat((std::string(detail::kShmDir) + "ipckit." + std::string(name)).c_str(), &st) == 0;
}

std::vector<std::string> Segment::list() {
  std::vector<std::string> names;
  DIR* d = ::opendir(detail::kShmDir);
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.starts_with("ipckit.") && n.size() > 7) names.emplace_back(n.substr(7));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string& Segment::name() const noexcept { return impl_->name_; }
std::size_t Segment::size() const noexcept { return impl_->size_; }
std::size_t Segment::free_bytes() const noexcept {
  return impl_->size_ - impl_->header().heap_top.load(std::memory_order_relaxed);
}
std::shared_ptr<const void> Segment::keepalive() const noexcept { return impl_; }

std::string Segment::label(ObjectKind kind, std::string_view name) const {
  return std::string(noun(kind)) + " '" + std::string(name) + "' in segment '" + impl_->name_ + "'";
}

SegmentInfo Segment::info() const {
  const auto& h = impl_->header();
  SegmentInfo i;
  i.name = impl_->name_;
  i.size = impl_->size_;
  i.used = h.heap_top.load(std::memory_order_relaxed);
  i.objects = h.object_count.load(std::memory_order_acquire);
  i.max_objects = h.max_objects;
  i.creator_pid = h.creator_pid;
  i.creator_alive = h.creator_start_ticks != 0 && detail::process_start_ticks(h.creator_pid) == h.creator_start_ticks;
  i.created_unix = h.created_unix;
  i.mode = impl_->mode_;
  i.owner_uid = impl_->uid_;
  return i;
}

namespace {

// A published entry, checked against the segment bounds before use.
const DirEntry& checked_entry(const detail::SegmentImpl& impl, std::uint32_t i) {
  const auto& h = impl.header();
  const DirEntry& e = impl.entries()[i];
  const std::uint64_t top = h.heap_top.load(std::memory_order_acquire);
  const bool named = std::memchr(e.name, '\0', sizeof e.name) != nullptr &&
                     std::memchr(e.type_name, '\0', sizeof e.type_name) != nullptr;
  if (!named || e.offset < h.heap_offset || e.offset % 64 != 0 || e.bytes > top || e.offset > top - e.bytes ||
      e.kind < 1 || e.kind > kLastObjectKind)
    throw CorruptSegment(impl.name_, detail::seg_label(impl.name_) + " is corrupt: directory entry " +
                                         std::to_string(i) + " points outside the segment; remove it (ipckit rm " +
                                         impl.name_ + ") and recreate it");
  return e;
}

const DirEntry* find_entry(const detail::SegmentImpl& impl, std::string_view name) {
  const std::uint32_t n = impl.header().object_count.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    const DirEntry& e = checked_entry(impl, i);
    if (name == e.name) return &e;
  }
  return nullptr;
}

ObjectInfo to_info(const DirEntry& e) {
  return ObjectInfo{e.name, static_cast<ObjectKind>(e.kind), e.type_name, e.elem_size, e.count, e.offset, e.bytes};
}

}  // namespace

std::vector<ObjectInfo> Segment::objects() const {
  std::vector<ObjectInfo> out;
  const std::uint32_t n = impl_->header().object_count.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) out.push_back(to_info(checked_entry(*impl_, i)));
  return out;
}

const void* Segment::object_body(std::string_view name, ObjectInfo* info) const {
  const DirEntry* e = find_entry(*impl_, name);
  if (e == nullptr)
    throw NotFound(std::string(name), "no object '" + std::string(name) + "' in " + detail::seg_label(impl_->name_) +
                                          "; `ipckit inspect " + impl_->name_ + "` lists what is there");
  if (info != nullptr) *info = to_info(*e);
  return impl_->at(e->offset);
}

std::optional<LockHolder> Segment::holder_of(std::string_view name) const {
  auto* body = const_cast<void*>(object_body(name));
  Lock view(static_cast<detail::LockState*>(body), keepalive(), std::string(name));
  return view.holder();
}

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

  if (const DirEntry* e = find_entry(*impl_, name)) return check_match(*e);

  // Create under the directory lock. A creator killed here leaves at worst
  // leaked heap space and an unpublished entry: the count is published last.
  Lock dir(&h.directory_lock, keepalive(), "directory of " + detail::seg_label(impl_->name_));
  std::lock_guard guard(dir);
  if (const DirEntry* e = find_entry(*impl_, name)) return check_match(*e);
  const std::uint32_t n = h.object_count.load(std::memory_order_relaxed);
  if (n >= h.max_objects)
    throw OutOfSpace(std::string(name), detail::seg_label(impl_->name_) + " cannot hold object '" + std::string(name) +
                                            "': its directory is full (" + std::to_string(h.max_objects) +
                                            " objects); create the segment with a larger SegmentOptions::max_objects");
  const std::uint64_t top = h.heap_top.load(std::memory_order_relaxed);
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

  DirEntry& e = impl_->entries()[n];
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

namespace {
template <class State>
detail::ObjectSpec plain_spec(ObjectKind kind, const char* type_name, std::uint64_t count = 1) {
  return detail::ObjectSpec{kind, type_name, sizeof(State), alignof(State), count, 1, sizeof(State)};
}
}  // namespace

Lock Segment::lock(std::string_view name) {
  auto spec = plain_spec<detail::LockState>(ObjectKind::Lock, "ipckit::Lock");
  return Lock(static_cast<detail::LockState*>(find_or_create(name, spec)), keepalive(), label(ObjectKind::Lock, name));
}

RLock Segment::rlock(std::string_view name) {
  auto spec = plain_spec<detail::LockState>(ObjectKind::RLock, "ipckit::RLock");
  return RLock(static_cast<detail::LockState*>(find_or_create(name, spec)), keepalive(), label(ObjectKind::RLock, name));
}

Condition Segment::condition(std::string_view name) { return bind_condition(name, nullptr, false); }
Condition Segment::condition(std::string_view name, const Lock& lock) { return bind_condition(name, lock.s_, false); }
Condition Segment::condition(std::string_view name, const RLock& lock) { return bind_condition(name, lock.s_, true); }

// The offset of the bound lock is the entry's count, so a process binding
// the name to another lock gets TypeMismatch (0: the condition's own lock).
Condition Segment::bind_condition(std::string_view name, detail::LockState* lock, bool reentrant) {
  std::uint64_t offset = 0;
  if (lock != nullptr) {
    const char* p = reinterpret_cast<const char*>(lock);
    if (p < impl_->base_ || p >= impl_->base_ + impl_->size_)
      throw InvalidArgument(std::string(name), label(ObjectKind::Condition, name) +
                                                   ": its lock must live in the same segment; open the lock from '" +
                                                   impl_->name_ + "'");
    offset = static_cast<std::uint64_t>(p - impl_->base_);
  }
  auto spec = plain_spec<detail::ConditionState>(ObjectKind::Condition, "ipckit::Condition", offset);
  auto* s = static_cast<detail::ConditionState*>(find_or_create(name, spec));
  return Condition(s, lock != nullptr ? lock : &s->own_lock, reentrant, keepalive(), label(ObjectKind::Condition, name));
}

Semaphore Segment::semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options) {
  return make_semaphore(name, initial, false, options);
}
Semaphore Segment::bounded_semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options) {
  return make_semaphore(name, initial, true, options);
}

Semaphore Segment::make_semaphore(std::string_view name, std::uint32_t initial, bool bounded, SemaphoreOptions options) {
  const ObjectKind kind = bounded ? ObjectKind::BoundedSemaphore : ObjectKind::Semaphore;
  if (initial > (1u << 30))
    throw InvalidArgument(std::string(name), label(kind, name) + ": initial value " + std::to_string(initial) +
                                                 " is too large; use at most 2^30");
  // Tracked and untracked semaphores are different types: mixing them up is a TypeMismatch.
  auto spec = plain_spec<detail::SemaphoreState>(
      kind, options.track_holders ? "ipckit::Semaphore(tracked)" : "ipckit::Semaphore", initial);
  struct Init { std::uint32_t initial; bool bounded; bool tracked; } init{initial, bounded, options.track_holders};
  spec.init = [](void* body, const void* arg) {
    const auto& i = *static_cast<const Init*>(arg);
    auto* st = static_cast<detail::SemaphoreState*>(body);
    st->count.store(i.initial, std::memory_order_relaxed);
    st->initial = i.initial;
    st->bounded = i.bounded ? 1 : 0;
    st->track_holders = i.tracked ? 1 : 0;
  };
  spec.init_arg = &init;
  return Semaphore(static_cast<detail::SemaphoreState*>(find_or_create(name, spec)), keepalive(), label(kind, name));
}

Event Segment::event(std::string_view name) {
  auto spec = plain_spec<detail::EventState>(ObjectKind::Event, "ipckit::Event");
  return Event(static_cast<detail::EventState*>(find_or_create(name, spec)), keepalive(), label(ObjectKind::Event, name));
}

Barrier Segment::barrier(std::string_view name, std::uint32_t parties) {
  if (parties < 1 || parties > detail::kBarrierMaxParties)
    throw InvalidArgument(std::string(name), label(ObjectKind::Barrier, name) + ": " + std::to_string(parties) +
                                                 " parties is out of range; use 1 to " +
                                                 std::to_string(detail::kBarrierMaxParties));
  auto spec = plain_spec<detail::BarrierState>(ObjectKind::Barrier, "ipckit::Barrier", parties);
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
  return detail::QueueCore(q, keepalive(), what);
}

}  // namespace ipckit
