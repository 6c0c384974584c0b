// Decoding the bytes of Value and Array snapshots by their type's spelling.
#include "values.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "text.hpp"

namespace ipckit::cli {
namespace {

// One decoded element: escaped text for the table, a value for JSON.
struct Cell {
  std::string text;
  Json json;
};

// The snapshot is a private copy (its scalars were read atomically), so a
// plain copy out of it is enough.
template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
std::string integer_text(T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  return std::string(buf, end);
}

template <class T>
Cell float_cell(T v) {
  if (std::isnan(v)) return {"nan", nullptr};
  if (std::isinf(v)) return {v > 0 ? "inf" : "-inf", nullptr};
  std::string s;
  char buf[64];
  if constexpr (std::is_same_v<T, long double>) {
    std::snprintf(buf, sizeof buf, "%.21Lg", v);
    s = buf;
  } else {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    s.assign(buf, end);
  }
  // Recognisably floating point in the table.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  const auto d = static_cast<double>(v);
  // A long double beyond a double's range stays exact as a string.
  return {s, std::isfinite(d) ? Json(d) : Json(s)};
}

template <class T>
Cell cell_of(const unsigned char* p) {
  const T v = load<T>(p);
  if constexpr (std::is_floating_point_v<T>) {
    return float_cell(v);
  } else {
    return {integer_text(v), v};
  }
}

Cell bool_cell(const unsigned char* p) {
  // Read the byte rather than a bool: another process may have left any value.
  const auto byte = load<std::uint8_t>(p);
  if (byte > 1) return {"true(" + std::to_string(byte) + ")", true};
  return {byte != 0 ? "true" : "false", byte != 0};
}

Cell char_cell(const unsigned char* p) {
  const char c = static_cast<char>(load<std::uint8_t>(p));
  return {quote_text(std::string_view(&c, 1), '\''), std::string(1, c)};
}

using CellReader = Cell (*)(const unsigned char*);

// The fundamental types the CLI can show, by their typeid(T).name() spelling.
struct KnownType {
  const char* code;
  std::size_t size;
  CellReader read;
};

constexpr KnownType kKnownTypes[] = {
    {"b", sizeof(bool), bool_cell},
    {"c", sizeof(char), char_cell},
    {"a", sizeof(signed char), cell_of<signed char>},
    {"h", sizeof(unsigned char), cell_of<unsigned char>},
    {"s", sizeof(short), cell_of<short>},
    {"t", sizeof(unsigned short), cell_of<unsigned short>},
    {"i", sizeof(int), cell_of<int>},
    {"j", sizeof(unsigned), cell_of<unsigned>},
    {"l", sizeof(long), cell_of<long>},
    {"m", sizeof(unsigned long), cell_of<unsigned long>},
    {"x", sizeof(long long), cell_of<long long>},
    {"y", sizeof(unsigned long long), cell_of<unsigned long long>},
    {"f", sizeof(float), cell_of<float>},
    {"d", sizeof(double), cell_of<double>},
    {"e", sizeof(long double), cell_of<long double>},
    {"w", sizeof(wchar_t), cell_of<std::int32_t>},
    {"Ds", sizeof(char16_t), cell_of<std::uint16_t>},
    {"Di", sizeof(char32_t), cell_of<std::uint32_t>},
    {"Du", sizeof(unsigned char), cell_of<unsigned char>},
};

const KnownType* known_type(const ValueStats& s) {
  for (const auto& t : kKnownTypes)
    if (s.type_name == t.code && s.elem_size == t.size) return &t;
  return nullptr;
}

std::string hex_bytes(const unsigned char* p, std::size_t n) {
  std::string out;
  char buf[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    out += buf;
  }
  return out;
}

// Elements the snapshot holds (it may have been asked for fewer than count).
std::uint64_t held(const ValueStats& s) { return s.elem_size == 0 ? 0 : s.data.size() / s.elem_size; }

// A type the CLI does not know: its first bytes in hex.
Decoded raw(const ValueStats& s, std::uint64_t count) {
  Decoded d;
  const std::uint64_t total = std::uint64_t{s.elem_size} * count;
  const std::size_t shown = std::min<std::uint64_t>({total, kRawBytesShown, s.data.size()});
  d.raw_hex = hex_bytes(s.data.data(), shown);
  d.text = "<" + std::to_string(total) + " bytes: " + d.raw_hex + (total > shown ? "...>" : ">");
  return d;
}

// A char array is almost always a text buffer: shown as a string up to its first NUL.
Decoded char_string(const ValueStats& s, std::size_t limit) {
  Decoded d;
  d.known = true;
  std::string text;
  for (std::uint64_t i = 0; i < held(s) && s.data[i] != '\0'; ++i) text += static_cast<char>(s.data[i]);
  d.truncated = limit != 0 && text.size() > kTextShown;
  if (d.truncated) text.resize(kTextShown);
  d.text = quote_text(text, '"') + (d.truncated ? "..." : "");
  d.json = text;
  return d;
}

}  // namespace

Decoded decode_value(const ValueStats& s) {
  const KnownType* type = known_type(s);
  if (type == nullptr || held(s) < 1) return raw(s, 1);
  Cell cell = type->read(s.data.data());
  Decoded d;
  d.known = true;
  d.text = std::move(cell.text);
  d.json = std::move(cell.json);
  return d;
}

Decoded decode_elements(const ValueStats& s, std::size_t limit) {
  const KnownType* type = known_type(s);
  if (type == nullptr) return raw(s, s.count);
  if (s.type_name == "c") return char_string(s, limit);
  const std::uint64_t wanted = limit == 0 ? s.count : std::min<std::uint64_t>(s.count, limit);
  const std::uint64_t shown = std::min(wanted, held(s));
  Decoded d;
  d.known = true;
  d.truncated = shown < s.count;
  d.text = "[";
  d.json = Json::array();
  for (std::uint64_t i = 0; i < shown; ++i) {
    Cell cell = type->read(s.data.data() + i * s.elem_size);
    if (i != 0) d.text += ", ";
    d.text += cell.text;
    d.json.push_back(std::move(cell.json));
  }
  if (d.truncated) d.text += ", ... " + std::to_string(s.count - shown) + " more";
  d.text += "]";
  return d;
}

std::size_t elements_needed(std::size_t limit) {
  // kTextShown + 1 characters tell whether a char array's text was cut; at
  // least kRawBytesShown bytes of any unknown type.
  return limit == 0 ? SIZE_MAX : std::max(limit, kTextShown + 1);
}

std::string pretty_type(const std::string& raw) {
  if (raw.empty()) return {};
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status), std::free);
  if (status == 0 && out) return out.get();
  return raw;
}

}  // namespace ipckit::cli
