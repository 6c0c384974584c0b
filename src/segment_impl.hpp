// segment_impl.hpp — what a Segment handle holds, and the layers its source
// is split into (internal, not installed):
//
//   shm_file.cpp           the file: open/create/publish/map/remove; every
//                          system call, and errno -> typed error
//   segment_header.cpp     the header: written by a creator, validated by an opener
//   segment_directory.cpp  the directory: finding, checking and creating objects
//   segment.cpp            the public entry points (create, open, remove, info, ...)
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipckit/detail/label.hpp"
#include "ipckit/segment.hpp"
#include "process_table_layout.hpp"
#include "segment_layout.hpp"
#include "shm_file.hpp"

namespace ipckit::detail {

inline constexpr std::uint64_t kMaxSegmentSize = std::uint64_t{1} << 40;
inline constexpr std::uint32_t kMaxObjects = 1'000'000;
inline constexpr std::uint64_t kDirectoryOffset = sizeof(SegmentHeader);

inline std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Header and directory of a segment with room for `max_objects` entries:
// where its process table begins.
inline std::uint64_t directory_bytes(std::uint32_t max_objects) {
  return align_up(sizeof(SegmentHeader) + std::uint64_t{max_objects} * sizeof(DirEntry), 64);
}
// Where the heap begins: after the directory and the process table.
inline std::uint64_t heap_offset_for(std::uint32_t max_objects, std::uint32_t max_processes) {
  return directory_bytes(max_objects) + process_table_bytes(max_processes);
}

// One read of a plain field another process may be writing: the value is
// checked and then used, so it must not be fetched twice.
template <class T>
T read_once(const T& x) {
  return *static_cast<const volatile T*>(&x);
}

// Where the directory and the heap lie: validated once when the segment is
// mapped and never re-read from it, so a stray write to the header cannot
// move them under a handle.
struct Geometry {
  std::uint64_t size = 0;
  std::uint32_t max_objects = 0;
  std::uint64_t heap_offset = 0;
  std::uint64_t table_offset = 0;  // the process table: ProcessSlot × max_processes
  std::uint32_t max_processes = 0;
  bool deadlock_detection = false;  // SegmentOptions::deadlock_detection
};

struct Attachment;  // process_table.cpp: this mapping in the process's list of listed segments

class SegmentImpl {
 public:
  // `listed`: this process gets a slot in the segment's process table (not
  // for tools that only look).
  // `lease`: the file, held with its shared lease (take_lease), for handles
  // that participate; none for tools that only look (they are not listed either).
  SegmentImpl(std::string name, Mapping map, const Geometry& geometry, mode_t mode, uid_t owner, UniqueFd lease)
      : name_(std::move(name)),
        lease_(std::move(lease)),
        map_(std::move(map)),
        geo_(geometry),
        mode_(mode & 0777),
        uid_(owner) {
    if (lease_.get() >= 0) attach();
  }
  ~SegmentImpl() { detach(); }
  SegmentImpl(const SegmentImpl&) = delete;
  SegmentImpl& operator=(const SegmentImpl&) = delete;

  // The process table (geometry-checked): slot i < geometry().max_processes.
  [[nodiscard]] ProcessSlot* slots() const { return reinterpret_cast<ProcessSlot*>(map_.base() + geo_.table_offset); }

  [[nodiscard]] SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(map_.base()); }
  // Entry `i` of the directory; i < max_objects, where the copied geometry
  // (not the header's fields) says the directory lies.
  [[nodiscard]] DirEntry& entry(std::uint32_t i) const {
    return reinterpret_cast<DirEntry*>(map_.base() + kDirectoryOffset)[i];
  }
  [[nodiscard]] char* at(std::uint64_t off) const { return map_.base() + off; }
  [[nodiscard]] bool contains(const void* p) const noexcept {
    const auto* c = static_cast<const char*>(p);
    return c >= map_.base() && c < map_.base() + geo_.size;
  }
  // "segment 'demo' is corrupt: <why>; remove the segment (ipckit rm demo) and recreate it"
  [[noreturn]] void corrupt(const std::string& why) const { raise_corrupt(segment_label(name_), why); }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const Geometry& geometry() const noexcept { return geo_; }
  [[nodiscard]] mode_t mode() const noexcept { return mode_; }
  [[nodiscard]] uid_t owner() const noexcept { return uid_; }

 private:
  void attach() noexcept;  // process_table.cpp
  void detach() noexcept;

  std::string name_;
  UniqueFd lease_;
  Attachment* attachment_ = nullptr;
  Mapping map_;
  Geometry geo_;
  mode_t mode_;
  uid_t uid_;
};

// segment.cpp: how messages name a kind, in lower-case words ("joinable
// queue", "rlock"), as in "joinable queue 'jobs' in segment 'demo'".
std::string noun(ObjectKind kind);
// segment_directory.cpp: the objects in the directory (as Segment::objects()).
std::vector<ObjectInfo> list_objects(const SegmentImpl& impl);

// segment_header.cpp
// Writes a new segment's header; the last store marks it ready.
void write_header(SegmentHeader& h, std::uint64_t size, const SegmentOptions& opt);
// Checks the header of a mapped file (`st` its stat) and returns its
// geometry. Throws CorruptSegment, saying why.
Geometry validate_header(const SegmentHeader& h, std::string_view name, const struct stat& st);
// A file under the name that is not a complete segment; throws CorruptSegment.
[[noreturn]] void throw_not_initialised(std::string_view name, const struct stat& st, const std::string& what);

}  // namespace ipckit::detail
