// Segments: the public entry points (create, open, remove, list, info). The
// layers below them: shm_file.cpp (the file and its system calls),
// segment_header.cpp (the header), segment_directory.cpp (the objects).
#include "ipckit/segment.hpp"

#include <sys/file.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "segment_impl.hpp"

namespace ipckit {
namespace detail {
namespace {

constexpr std::size_t kMaxSegmentName = 200;

void check_segment_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    throw InvalidName(std::string(name), std::string(name),
                      "invalid segment name '" + std::string(name) + "': " + why + "; use 1-" +
                          std::to_string(kMaxSegmentName) + " printable characters without '/'");
  };
  if (name.empty()) bad("it is empty");
  if (name.size() > kMaxSegmentName) bad("it is " + std::to_string(name.size()) + " characters long");
  if (name == "." || name == "..") bad("it is a directory name");
  for (char c : name) {
    if (c == '/') bad("it contains '/'");
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("it contains a control character");
  }
}

void check_create_args(std::string_view name, std::size_t size, const SegmentOptions& opt) {
  check_segment_name(name);
  if (opt.max_objects == 0 || opt.max_objects > kMaxObjects)
    throw InvalidArgument(std::string(name), std::string(name),
                          seg_label(name) + ": max_objects must be between 1 and 1000000");
  if (opt.max_processes == 0 || opt.max_processes > kMaxProcessesLimit)
    throw InvalidArgument(std::string(name), std::string(name),
                          seg_label(name) + ": max_processes must be between 1 and " +
                              std::to_string(kMaxProcessesLimit) + " (the size of its process table)");
  const std::uint64_t min = Segment::min_size(opt.max_objects, opt.max_processes);
  if (size < min || size > kMaxSegmentSize)
    throw InvalidArgument(std::string(name), std::string(name),
                          seg_label(name) + ": size " + std::to_string(size) + " is out of range; use " +
                              std::to_string(min) + " bytes (for " + std::to_string(opt.max_objects) + " objects, " +
                              std::to_string(opt.max_processes) + " processes) up to 1 TiB");
}

void run_hook(CreateStage stage) {
  if (g_create_hook != nullptr) [[unlikely]]
    g_create_hook(stage);
}

std::shared_ptr<SegmentImpl> create_segment(std::string_view name, std::size_t size, const SegmentOptions& opt) {
  check_create_args(name, size, opt);
  // Cheap answers before anything is reserved; publish() decides for real.
  if (name_taken(name)) throw_errno(EEXIST, name, "create");
  check_space(name, size);
  run_hook(CreateStage::SpaceChecked);

  UniqueFd fd = create_unnamed(name, size);
  run_hook(CreateStage::Reserved);
  const struct stat st = stat_of(fd.get(), name);
  Mapping map(fd.get(), size, name);
  write_header(*reinterpret_cast<SegmentHeader*>(map.base()), size, opt);
  run_hook(CreateStage::Initialised);

  // Leased before it has a name: no gc can ever see it unused.
  if (::flock(fd.get(), LOCK_SH) != 0) throw_errno(errno, name, "take its lease (flock)");
  if (!publish(fd.get(), name, opt.mode)) throw_errno(EEXIST, name, "create");
  const Geometry geometry{size,
                          opt.max_objects,
                          heap_offset_for(opt.max_objects, opt.max_processes),
                          directory_bytes(opt.max_objects),
                          opt.max_processes,
                          opt.deadlock_detection};
  return std::make_shared<SegmentImpl>(std::string(name), std::move(map), geometry, opt.mode, st.st_uid, std::move(fd));
}

std::shared_ptr<SegmentImpl> open_segment(std::string_view name, const Trust& trust) {
  check_segment_name(name);
  CheckedFile f = open_checked(name, trust);
  const auto file_size = static_cast<std::uint64_t>(f.st.st_size);
  if (file_size < sizeof(SegmentHeader))
    throw_not_initialised(name, f.st, "it is " + std::to_string(file_size) + " bytes long");
  if (file_size > kMaxSegmentSize)
    throw CorruptSegment(std::string(name), std::string(name),
                         seg_label(name) + " is " + std::to_string(file_size) +
                             " bytes long, larger than any segment; remove it (ipckit rm " + std::string(name) + ")");
  Mapping map(f.fd.get(), file_size, name);
  const Geometry geometry = validate_header(*reinterpret_cast<const SegmentHeader*>(map.base()), name, f.st);
  // A look-only open (ipckit ls/inspect/ps) is not a participant: no lease, not listed.
  if (trust.any)
    f.fd.reset();
  else
    take_lease(f.fd.get(), name);
  return std::make_shared<SegmentImpl>(std::string(name), std::move(map), geometry, f.st.st_mode, f.st.st_uid,
                                       std::move(f.fd));
}

}  // namespace
}  // namespace detail

namespace {
// Every kind's name, at its number (ObjectKind numbers run 1..kLastObjectKind).
constexpr std::array<const char*, kLastObjectKind + 1> kKindNames = {
    nullptr,
    "Value",
    "Array",
    "Lock",
    "RLock",
    "Condition",
    "Semaphore",
    "BoundedSemaphore",
    "Event",
    "Barrier",
    "Queue",
    "JoinableQueue",
    "PriorityQueue",
    "LifoQueue",
    "JoinablePriorityQueue",
};
static_assert(kKindNames[kLastObjectKind] != nullptr, "a kind without a name");

const char* kind_name(ObjectKind kind) noexcept {
  const auto i = static_cast<std::uint32_t>(kind);
  return i <= kLastObjectKind ? kKindNames[i] : nullptr;
}

}  // namespace

namespace detail {
std::string noun(ObjectKind kind) {
  const char* name = kind_name(kind);
  if (name == nullptr) return "object";
  std::string words;
  for (const char* c = name; *c != '\0'; ++c) {
    const auto ch = static_cast<unsigned char>(*c);
    if (c != name && std::isupper(ch) != 0 && std::islower(static_cast<unsigned char>(c[-1])) != 0) words += ' ';
    words += static_cast<char>(std::tolower(ch));
  }
  return words;
}
}  // namespace detail

const char* to_string(ObjectKind kind) noexcept {
  const char* name = kind_name(kind);
  return name != nullptr ? name : "unknown";
}

std::size_t Segment::min_size(std::uint32_t max_objects, std::uint32_t max_processes) {
  return detail::heap_offset_for(max_objects, max_processes) + 4096;
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
  throw SystemError(
      std::string(name), std::string(name),
      detail::seg_label(name) + ": open_or_create kept racing with removals of " + detail::shm_path(name) + "; retry");
}

bool Segment::remove(std::string_view name) {
  detail::check_segment_name(name);
  return detail::remove_file(name);
}

bool Segment::exists(std::string_view name) {
  detail::check_segment_name(name);
  return detail::name_taken(name);
}

std::vector<std::string> Segment::list() { return detail::list_names(); }

const std::string& Segment::name() const noexcept { return impl_->name(); }
std::size_t Segment::size() const noexcept { return impl_->geometry().size; }
std::size_t Segment::free_bytes() const noexcept {
  const std::uint64_t top = impl_->header().heap_top.load(std::memory_order_relaxed);
  const detail::Geometry& g = impl_->geometry();
  return top >= g.heap_offset && top <= g.size ? g.size - top : 0;
}
std::shared_ptr<const void> Segment::keepalive() const noexcept { return impl_; }

std::optional<std::uint64_t> Segment::offset_of(const void* p) const noexcept {
  if (!impl_->contains(p)) return std::nullopt;
  return static_cast<std::uint64_t>(static_cast<const char*>(p) - impl_->at(0));
}

detail::Label Segment::label_of(ObjectKind kind, std::string_view name) const {
  return {std::string(name), impl_->name(),
          detail::noun(kind) + " '" + std::string(name) + "' in segment '" + impl_->name() + "'"};
}

SegmentInfo Segment::info() const {
  const auto& h = impl_->header();
  const detail::Geometry& g = impl_->geometry();
  SegmentInfo i;
  i.name = impl_->name();
  i.size = g.size;
  i.used = std::clamp<std::uint64_t>(h.heap_top.load(std::memory_order_relaxed), g.heap_offset, g.size);
  i.objects = std::min(h.object_count.load(std::memory_order_acquire), g.max_objects);
  i.max_objects = g.max_objects;
  i.creator_pid = detail::read_once(h.creator_pid);
  const std::uint64_t start = detail::read_once(h.creator_start_ticks);
  i.creator_alive = start != 0 && i.creator_pid > 0 && detail::process_start_ticks(i.creator_pid) == start;
  i.created_unix = detail::read_once(h.created_unix);
  i.mode = impl_->mode();
  i.owner_uid = impl_->owner();
  i.max_processes = g.max_processes;
  i.deadlock_detection = g.deadlock_detection;
  return i;
}

}  // namespace ipckit
