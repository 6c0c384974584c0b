// src/cli/values.hpp — what a Value or Array holds, decoded for people: the
// library's snapshot (ValueStats) has the bytes, this knows the fundamental
// types by their typeid spelling ("l" for long) and shows the rest in hex.
#pragma once

#include <cstddef>
#include <string>

#include "ipckit/stats.hpp"
#include "json.hpp"

namespace ipckit::cli {

// Characters of a char array shown in a listing (the snapshot must hold one more).
inline constexpr std::size_t kTextShown = 120;
// Bytes of an unknown type shown in hex.
inline constexpr std::size_t kRawBytesShown = 64;

struct Decoded {           // NOLINT(bugprone-exception-escape): its Json member allocates
  bool known = false;      // false: a type the CLI cannot decode (raw_hex is set)
  std::string text;        // for the table, escaped
  Json json;               // scalar, array or string
  bool truncated = false;  // only `limit` elements (or kTextShown characters) shown
  std::string raw_hex;     // unknown types: the first bytes, in hex
};

// A Value's one element.
Decoded decode_value(const ValueStats& s);
// An Array's first `limit` elements (0: all); a char array as a string up to
// its first NUL. The snapshot must hold them (Segment::inspect's max_elements).
Decoded decode_elements(const ValueStats& s, std::size_t limit);
// How many elements inspect must copy to show `limit` of them (0: all).
std::size_t elements_needed(std::size_t limit);

// "long" for "l", "my::Point" for "N2my5PointE"; the raw name when it does
// not demangle. Unescaped.
std::string pretty_type(const std::string& raw);

}  // namespace ipckit::cli
