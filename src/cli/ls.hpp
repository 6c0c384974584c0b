// src/cli/ls.hpp — what `ipckit ls` prints: every segment's summary, or why
// it could not be read.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/segment.hpp"

namespace ipckit::cli {

// One line of `ipckit ls`.
struct LsEntry {
  std::string name;
  std::optional<SegmentInfo> info;
  std::string error;
  std::uint32_t processes = 0;  // live processes in its process table
};

struct LsListing {
  std::vector<LsEntry> entries;
  // False when some segment was still being opened at the deadline (its
  // entry says so); that open goes on in a detached thread, so the caller
  // should leave with std::_Exit after writing its output.
  bool complete = true;
};

// Opens every segment (several at once, so that one that is slow to open
// delays the listing by at most one open) and stops waiting at `deadline`.
// Every error (ipckit's or another) becomes the segment's entry.
LsListing gather_ls(std::chrono::milliseconds deadline = std::chrono::seconds(5));
void render_ls(std::ostream& out, const std::vector<LsEntry>& entries, bool json);

}  // namespace ipckit::cli
