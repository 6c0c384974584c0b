// ipckit/detail/label.hpp — how ipckit names what an error is about, and the
// one way it raises errors.
//
// Every message begins with who it is about ("lock 'A' in segment 'demo'"),
// says what went wrong, then what to do; the Error carries the bare names
// (object() "A", segment() "demo") for code that handles it.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "ipckit/error.hpp"

namespace ipckit::detail {

struct Label {
  Label(std::string object_name, std::string segment_name, std::string label_text)
      : object(std::move(object_name)), segment(std::move(segment_name)), text(std::move(label_text)) {}

  // A part of this object with its own label, e.g. "... (its lock)".
  [[nodiscard]] Label part(std::string_view what) const {
    return {object, segment, text + " (" + std::string(what) + ")"};
  }

  std::string object;   // "A"
  std::string segment;  // "demo"; "" outside a segment
  std::string text;     // "lock 'A' in segment 'demo'"
};

// Segment `name` itself: "segment 'demo'".
inline Label segment_label(std::string_view name) {
  return {std::string(name), std::string(name), "segment '" + std::string(name) + "'"};
}

// Throws E about `who`: "<who>: <what>; <fix>".
template <class E>
[[noreturn]] void raise(const Label& who, const std::string& what, const std::string& fix, std::error_code code = {}) {
  throw E(who.object, who.segment, who.text + ": " + what + "; " + fix, code);
}

// Throws E whose message is a sentence about `who` going on from its label:
// "<who> <says>" ("queue 'jobs' in segment 'demo' is empty"), for states
// that need no fix spelled out, or whose fix is part of the sentence.
template <class E>
[[noreturn]] void raise_about(const Label& who, const std::string& says) {
  throw E(who.object, who.segment, who.text + " " + says);
}

// Throws CorruptSegment about `who`: "<who> is corrupt: <what>; remove the
// segment (ipckit rm <segment>) and recreate it".
[[noreturn]] inline void raise_corrupt(const Label& who, const std::string& what) {
  const std::string rm = who.segment.empty() ? "ipckit rm" : "ipckit rm " + who.segment;
  throw CorruptSegment(who.object, who.segment,
                       who.text + " is corrupt: " + what + "; remove the segment (" + rm + ") and recreate it");
}

}  // namespace ipckit::detail
