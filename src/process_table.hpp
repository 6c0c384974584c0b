// process_table.hpp — the library's side of the process table (internal):
// what ipckit::Process calls as a child moves through its lifecycle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ipckit/detail/wait_record.hpp"
#include "ipckit/process_table.hpp"

namespace ipckit::detail {

// Records `state` in this process's slot of every listed segment it has
// mapped, claiming slots (in that state) where it has none yet (a child
// right after fork). Never throws; a full table means "not listed".
void note_lifecycle(ProcessState state) noexcept;

struct ProcessSlot;
// A slot's name bytes up to the first NUL (at most 23): untrusted, escaped
// by whoever prints them.
std::string slot_name(const ProcessSlot& s);

struct WaitRecord;
// One consistent read (seqlock) of a published wait record: null while it
// is being written, when it is free, or when it names no known operation.
struct WaitSnapshot {
  std::uint32_t seq = 0;  // what the record's seq was: it moves with every wait begun or ended
  std::uint32_t tid = 0;
  std::uint64_t thread_start = 0;
  WaitOp op = WaitOp::None;
  std::uint64_t offset = 0;  // of the word waited on
  std::uint64_t since_ns = 0;
};
std::optional<WaitSnapshot> read_wait_record(const WaitRecord& r);

}  // namespace ipckit::detail
