// src/cli/inspect.hpp — what `ipckit inspect` and `ipckit ls` print, as
// functions of a segment, so that tools and fuzz targets can run the exact
// code the CLI runs (library target ipckit_cli_lib).
//
// Rendering only observes: it reads values with atomic loads and never
// takes an object's lock, so it cannot block or disturb the processes it
// looks at. The bytes of a segment may be anything (another process, a
// stray write, a fuzzer): every failure is an ipckit::Error, JSON output is
// always valid UTF-8 (bytes that are not become U+FFFD) and human output
// escapes control characters and invalid bytes (text.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/segment.hpp"

namespace ipckit::cli {

struct InspectOptions {
  std::optional<std::string> object;  // only this object (NotFound if there is none of that name)
  std::optional<std::size_t> limit;   // array elements shown (0: all); default 8, all for one object
  bool json = false;
};

// Writes what `ipckit inspect` prints for `seg`. Nothing is written when it
// throws (the output is built first, then written).
void render_inspect(std::ostream& out, const Segment& seg, const InspectOptions& options = {});
std::string render_inspect(const Segment& seg, bool json);

// One line of `ipckit ls`: a segment's summary, or why it could not be read.
struct LsEntry {
  std::string name;
  std::optional<SegmentInfo> info;
  std::string error;
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
