// The CLI's human output: escaping, sizes, ages, tables.
#include "text.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace ipckit::cli {
namespace {

// Length of the valid UTF-8 sequence at the start of `s` (its code point
// in `cp`), or 0 if it is not one: overlong forms, surrogates, code points
// above U+10FFFF and bytes that cannot start a sequence are all invalid.
std::size_t utf8_sequence(std::string_view s, std::uint32_t& cp) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  std::size_t len = 0;
  std::uint32_t min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2, min = 0x80, cp = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3, min = 0x800, cp = c & 0x0fu;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4, min = 0x10000, cp = c & 0x07u;
  } else {
    return 0;  // a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5-0xff
  }
  if (s.size() < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// Code points a terminal acts on or that reorder what is shown around them.
bool invisible_control(std::uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

void append_hex(std::string& out, const char* format, unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, format, v);
  out += buf;
}

void escape_into(std::string& out, std::string_view s, char quote) {
  while (!s.empty()) {
    std::uint32_t cp = 0;
    const std::size_t len = utf8_sequence(s, cp);
    if (len == 0) {
      append_hex(out, "\\x%02x", static_cast<unsigned char>(s[0]));
      s.remove_prefix(1);
      continue;
    }
    if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\\' || (quote != 0 && cp == static_cast<unsigned char>(quote))) {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp < 0x20 || cp == 0x7f) {
      append_hex(out, "\\x%02x", cp);
    } else if (invisible_control(cp)) {
      append_hex(out, "\\u%04x", cp);
    } else {
      out.append(s.substr(0, len));
    }
    s.remove_prefix(len);
  }
}

}  // namespace

std::string escape_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  escape_into(out, bytes, 0);
  return out;
}

std::string quote_text(std::string_view bytes, char quote) {
  std::string out(1, quote);
  escape_into(out, bytes, quote);
  out += quote;
  return out;
}

std::size_t display_width(std::string_view utf8) {
  return static_cast<std::size_t>(
      std::count_if(utf8.begin(), utf8.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

std::string human_bytes(std::uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  std::size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10.0 ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
  return buf;
}

std::string human_age(std::int64_t seconds) {
  if (seconds < 0) return "in the future";
  char buf[48];
  const auto s = static_cast<long long>(seconds);
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

std::string octal_mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(rows_.front().size(), 0);
  for (const auto& row : rows_) {
    if (row.empty()) continue;
    const std::size_t sized = row.size() < width.size() ? row.size() - 1 : row.size();
    for (std::size_t i = 0; i < sized && i < width.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      const std::size_t w = display_width(row[i]);
      if (i + 1 < row.size()) line.append((i < width.size() ? std::max(width[i], w) : w) - w + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

}  // namespace ipckit::cli
