// src/cli/inspect.hpp — what `ipckit inspect` prints, as a function of a
// segment, so that tools and fuzz targets can run the exact code the CLI
// runs (library target ipckit_cli_lib).
//
// It prints the library's snapshots (Segment::inspect, ipckit/inspect.hpp):
// taking them only observes (no lock taken, no wait), so it cannot block or
// disturb the processes it looks at. The bytes of a segment may be anything
// (another process, a stray write, a fuzzer): every failure is an
// ipckit::Error, JSON output is always valid UTF-8 (bytes that are not
// become U+FFFD) and human output escapes control characters and invalid
// bytes (text.hpp).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>

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

}  // namespace ipckit::cli
