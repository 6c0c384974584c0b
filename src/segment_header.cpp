// The segment header: what a creator writes before it publishes the segment,
// and what an opener checks before it trusts a byte of it.
#include <ctime>
#include <string>

#include "ipckit/detail/label.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/error.hpp"
#include "segment_impl.hpp"

namespace ipckit::detail {
namespace {

// Everything an opener needs from the header, each field read once.
struct HeaderSnapshot {
  std::uint64_t magic, size, directory_offset, heap_offset, heap_top, table_offset;
  std::uint32_t layout_version, header_bytes, ready, max_objects, object_count, max_processes, flags;
};

HeaderSnapshot snapshot(const SegmentHeader& h) {
  return {read_once(h.magic),
          read_once(h.size),
          read_once(h.directory_offset),
          read_once(h.heap_offset),
          h.heap_top.load(std::memory_order_acquire),
          read_once(h.process_table_offset),
          read_once(h.layout_version),
          read_once(h.header_bytes),
          h.ready.load(std::memory_order_acquire),
          read_once(h.max_objects),
          h.object_count.load(std::memory_order_acquire),
          read_once(h.max_processes),
          read_once(h.flags)};
}

}  // namespace

// This ipckit links a segment under its name only once it is complete, so
// such a file was put there by someone else: never replaced, only reported.
void throw_not_initialised(std::string_view name, const struct stat& st, const std::string& what) {
  std::string holders;
  for (int pid : lock_holders(st)) holders += (holders.empty() ? "" : ", ") + std::to_string(pid);
  throw CorruptSegment(
      std::string(name), std::string(name),
      seg_label(name) + " (" + shm_path(name) + ") is not an initialised ipckit segment: " + what +
          ". ipckit names a segment only once it is complete, so another program (or an older ipckit whose creator "
          "died or is still at work) put this file there" +
          (holders.empty() ? std::string() : "; process " + holders + " holds a lock on it") +
          ". Remove it (ipckit rm " + std::string(name) + ") and create the segment again");
}

void write_header(SegmentHeader& h, std::uint64_t size, const SegmentOptions& opt) {
  const std::uint32_t max_objects = opt.max_objects;
  const std::uint32_t max_processes = opt.max_processes;
  const ThreadIdentity me = this_process();
  h.magic = kSegmentMagic;
  h.layout_version = kSegmentLayout;
  h.header_bytes = sizeof(SegmentHeader);
  h.size = size;
  h.max_objects = max_objects;
  h.directory_offset = kDirectoryOffset;
  h.process_table_offset = directory_bytes(max_objects);
  h.max_processes = max_processes;
  h.heap_offset = heap_offset_for(max_objects, max_processes);
  h.flags = opt.deadlock_detection ? kFlagDeadlockDetection : 0;
  h.heap_top.store(h.heap_offset, std::memory_order_relaxed);
  h.creator_pid = static_cast<std::int32_t>(me.tid);
  h.creator_start_ticks = me.start_ticks;
  h.created_unix = std::time(nullptr);
  h.ready.store(kReady, std::memory_order_release);
}

Geometry validate_header(const SegmentHeader& header, std::string_view name, const struct stat& st) {
  const HeaderSnapshot h = snapshot(header);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  const auto corrupt = [&](const std::string& why) { raise_corrupt(segment_label(name), why); };
  if (h.magic == 0 && h.ready != kReady) throw_not_initialised(name, st, "its header is blank");
  if (h.magic != kSegmentMagic) corrupt("it is not an ipckit segment (bad magic number)");
  if (h.layout_version > kSegmentLayout)
    throw CorruptSegment(std::string(name), std::string(name),
                         seg_label(name) + " has layout version " + std::to_string(h.layout_version) +
                             ", newer than this ipckit understands (" + std::to_string(kSegmentLayout) +
                             "); upgrade ipckit in this program");
  if (h.layout_version != kSegmentLayout)
    throw CorruptSegment(std::string(name), std::string(name),
                         seg_label(name) + " has layout version " + std::to_string(h.layout_version) +
                             ", written by an older ipckit (this one writes " + std::to_string(kSegmentLayout) +
                             "); once no program uses it, remove it (ipckit rm " + std::string(name) +
                             ") and let it be recreated");
  if (h.ready != kReady) throw_not_initialised(name, st, "its header is incomplete");
  if (h.header_bytes != sizeof(SegmentHeader)) corrupt("unexpected header size");
  if (h.size != file_size)
    corrupt("it says it is " + std::to_string(h.size) + " bytes but is " + std::to_string(file_size) + " (truncated?)");
  if (h.directory_offset != kDirectoryOffset || h.max_objects == 0 || h.max_objects > kMaxObjects ||
      h.heap_offset > h.size)
    corrupt("its directory lies outside the segment");
  if (h.table_offset != directory_bytes(h.max_objects) || h.max_processes == 0 ||
      h.max_processes > kMaxProcessesLimit || h.heap_offset != heap_offset_for(h.max_objects, h.max_processes))
    corrupt("its process table lies outside the segment");
  if (h.heap_top < h.heap_offset || h.heap_top > h.size) corrupt("its allocation pointer lies outside the segment");
  if (h.object_count > h.max_objects) corrupt("its object count exceeds its directory");
  if ((h.flags & ~kKnownFlags) != 0) corrupt("its header has unknown option bits " + std::to_string(h.flags));
  return Geometry{h.size,         h.max_objects,   h.heap_offset,
                  h.table_offset, h.max_processes, (h.flags & kFlagDeadlockDetection) != 0};
}

}  // namespace ipckit::detail
