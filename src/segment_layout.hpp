// The bytes of a segment, as every process sees them.
//
//   [SegmentHeader][DirEntry × max_objects][ProcessSlot × max_processes][objects ... bump-allocated]
//
// Nothing here holds a pointer: only offsets from the segment's start, so the
// segment can be mapped at any address. Every field read from the segment is
// validated before use (another process, or a bug, may have written garbage).
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

inline constexpr std::uint64_t kSegmentMagic = 0x31474553544B5049ULL;  // "IPKTSEG1" little-endian
inline constexpr std::uint32_t kSegmentLayout = 3;                     // 2: the process table; 3: doorbells
inline constexpr std::uint32_t kReady = 0x52454459;                    // "REDY": initialisation finished
inline constexpr std::size_t kMaxObjectName = 63;
inline constexpr std::size_t kShownTypeName = 63;
// SegmentHeader::flags. Segments of layout 2 written before flags existed
// hold 0 there (the header's padding), which is "every option off".
inline constexpr std::uint32_t kFlagDeadlockDetection = 1;
inline constexpr std::uint32_t kKnownFlags = kFlagDeadlockDetection;

struct alignas(64) SegmentHeader {
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t header_bytes;        // sizeof(SegmentHeader) of the writer
  std::uint64_t size;                // whole segment, bytes
  std::atomic<std::uint32_t> ready;  // kReady once the creator is done
  std::uint32_t max_objects;
  std::uint64_t directory_offset;
  std::uint64_t heap_offset;                // first byte after the directory
  std::atomic<std::uint64_t> heap_top;      // bump pointer (offset); only grows
  std::atomic<std::uint32_t> object_count;  // published directory entries
  std::int32_t creator_pid;
  std::uint64_t creator_start_ticks;
  std::int64_t created_unix;
  std::uint64_t process_table_offset;  // ProcessSlot × max_processes (process_table_layout.hpp)
  std::uint32_t max_processes;
  std::uint32_t flags;       // kFlag* below; unknown bits make the segment corrupt
  LockState directory_lock;  // serialises object creation only
};
static_assert(sizeof(SegmentHeader) == 192);

struct DirEntry {
  char name[kMaxObjectName + 1];
  char type_name[kShownTypeName + 1];  // typeid name, truncated for display
  std::uint64_t type_hash;             // of the whole typeid name
  std::uint32_t kind;
  std::uint32_t layout_version;
  std::uint32_t elem_size;
  std::uint32_t elem_align;
  std::uint64_t count;
  std::uint64_t offset;
  std::uint64_t bytes;
  std::uint64_t reserved[2];
};
static_assert(sizeof(DirEntry) == 192);

}  // namespace ipckit::detail
