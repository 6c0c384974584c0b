// src/cli/text.hpp — the CLI's human output: bytes made safe for a terminal,
// sizes and ages in words, and plain aligned tables.
//
// Everything the CLI shows comes from shared memory or /dev/shm, where any
// local user may have planted bytes: a newline that forges a table row, an
// escape sequence that rewrites the terminal, bytes that are not UTF-8.
// escape_text() turns every such byte into visible text, so one name is
// always one cell on one line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::cli {

// `bytes` as printable text: valid UTF-8 that is not a control character
// is kept; \n \t \r and backslash become \n \t \r \\; other C0 controls,
// DEL and bytes that are not part of valid UTF-8 (overlong forms,
// surrogates, 0xF5-0xFF, stray continuation bytes) become \xNN; C1
// controls and the bidi / line-separator format characters become \uNNNN.
std::string escape_text(std::string_view bytes);
// The same between quotes, with the quote character escaped: "ab\n".
std::string quote_text(std::string_view bytes, char quote);
// Characters (code points) of valid UTF-8, for column widths.
std::size_t display_width(std::string_view utf8);

std::string human_bytes(std::uint64_t n);     // "1.5 MiB"
std::string human_age(std::int64_t seconds);  // "45s", "3m12s", "2h05m", "4d03h"
std::string octal_mode(mode_t mode);          // "0600"

// Left-aligned columns two spaces apart. Cells must be escaped text
// already; a row shorter than the header ends in a cell that spans the
// rest (an error message) and sets no column's width.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace ipckit::cli
