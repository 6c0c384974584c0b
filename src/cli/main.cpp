// ipckit — look at ipckit's shared-memory segments from the shell, like `ipcs`.
//
//   ipckit ls [--json]                  every segment: size, use, objects, creator, age
//   ipckit inspect SEG [OBJ] [--json]   its objects: kind, type, values, lock holders
//   ipckit rm SEG...                    deletes segments by name
//
// The CLI only observes: it never takes an object's lock, so it cannot block
// or disturb the processes it looks at. Values are read as a snapshot (single
// atomic loads for scalars), which is what a lock-free observer can promise.
//
// Exit status: 0 on success, 1 when ipckit reports an error (printed as
// "ipckit: <message>" on stderr), 2 for a bad command line.
#include <cxxabi.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "ipckit/error.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/value.hpp"

namespace {

// ---------------------------------------------------------------------------
// Text helpers

std::string human_bytes(std::uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
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

// "45s", "3m12s", "2h05m", "4d03h".
std::string human_age(std::int64_t seconds) {
  if (seconds < 0) return "in the future";
  char buf[48];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(seconds));
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(seconds / 60),
                  static_cast<long long>(seconds % 60));
  } else if (seconds < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(seconds / 86400),
                  static_cast<long long>(seconds % 86400 / 3600));
  }
  return buf;
}

std::string octal_mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::int64_t now_unix() { return static_cast<std::int64_t>(std::time(nullptr)); }

// "long" for "l", "my::Point" for "N2my5PointE"; the raw name when it does
// not demangle.
std::string pretty_type(const std::string& raw) {
  if (raw.empty()) return {};
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status),
                                             std::free);
  if (status == 0 && out) return out.get();
  return raw;
}

// A C-style quoted rendering of bytes for the table: "ab\n\x01".
std::string quote_bytes(std::string_view s, char quote) {
  std::string out(1, quote);
  for (unsigned char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

// ---------------------------------------------------------------------------
// JSON: a small streaming writer, pretty-printed with two-space indents.

std::string json_string(std::string_view s) {
  std::string out = "\"";
  // Bytes that do not form valid UTF-8 are written as \u00XX (as if Latin-1),
  // so the output is always valid JSON.
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
      bool valid = len != 0 && i + len <= s.size();
      for (std::size_t k = 1; valid && k < len; ++k)
        valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (valid) {
        out.append(s.substr(i, len));
        i += len;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
        ++i;
      }
    }
  }
  out += '"';
  return out;
}

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& key(std::string_view k) {
    separate();
    out_ << json_string(k) << ": ";
    after_key_ = true;
    return *this;
  }
  // A token that is already JSON (a number, true, null, a rendered string...).
  JsonWriter& raw(std::string_view token) {
    separate();
    out_ << token;
    return *this;
  }
  JsonWriter& value(std::string_view s) { return raw(json_string(s)); }
  JsonWriter& value(const char* s) { return raw(json_string(s)); }
  JsonWriter& value(const std::string& s) { return raw(json_string(s)); }
  JsonWriter& value(bool b) { return raw(b ? "true" : "false"); }
  template <class T>
    requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
  JsonWriter& value(T n) {
    return raw(std::to_string(n));
  }
  JsonWriter& null() { return raw("null"); }

  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  void finish() { out_ << '\n'; }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ << c;
    first_.push_back(true);
    return *this;
  }
  JsonWriter& close(char c) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) newline();
    out_ << c;
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ << ',';
    first_.back() = false;
    newline();
  }
  void newline() {
    out_ << '\n';
    for (std::size_t i = 0; i < first_.size(); ++i) out_ << "  ";
  }

  std::ostream& out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// ---------------------------------------------------------------------------
// A plain text table: left-aligned columns separated by two spaces.

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const {
    // A row shorter than the header ends in a cell that spans the rest (an
    // error message): it sets no column's width.
    std::vector<std::size_t> width(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      const std::size_t sized = row.size() < width.size() ? row.size() - 1 : row.size();
      for (std::size_t i = 0; i < sized && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(std::max(width[i], row[i].size()) - row[i].size() + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// ---------------------------------------------------------------------------
// Decoding the values of Value and Array objects.

// One decoded element, for the table and for JSON.
struct Cell {
  std::string text;
  std::string json;
};

template <class T>
T load(const unsigned char* p) {
  T v;
  if constexpr (sizeof(T) <= 8 && (sizeof(T) & (sizeof(T) - 1)) == 0) {
    // The library stores scalars with single atomic stores; read them the same
    // way when aligned so a snapshot never shows a torn value.
    if (reinterpret_cast<std::uintptr_t>(p) % sizeof(T) == 0) {
      __atomic_load(reinterpret_cast<const T*>(p), &v, __ATOMIC_ACQUIRE);
      return v;
    }
  }
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
  if (std::isnan(v)) return {"nan", "null"};
  if (std::isinf(v)) return {v > 0 ? "inf" : "-inf", "null"};
  std::string s;
  if constexpr (std::is_same_v<T, long double>) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.21Lg", v);
    s = buf;
  } else {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    s.assign(buf, end);
  }
  // Keep the JSON a number and the table recognisably floating point.
  std::string json = s;
  if (json.find_first_of(".eE") == std::string::npos) json += ".0";
  return {json, json};
}

template <class T>
Cell cell_of(const unsigned char* p) {
  const T v = load<T>(p);
  if constexpr (std::is_same_v<T, bool>) {
    return {v ? "true" : "false", v ? "true" : "false"};
  } else if constexpr (std::is_floating_point_v<T>) {
    return float_cell(v);
  } else {
    auto s = integer_text(v);
    return {s, s};
  }
}

using CellReader = Cell (*)(const unsigned char*);

// The fundamental types the CLI can show, by their typeid(T).name() spelling.
struct KnownType {
  const char* code;
  std::size_t size;
  CellReader read;
};

Cell bool_cell(const unsigned char* p) {
  // Read the byte rather than a bool: another process may have left any value.
  const auto byte = load<std::uint8_t>(p);
  if (byte > 1) return {"true(" + std::to_string(byte) + ")", "true"};
  return cell_of<bool>(p);
}

Cell char_cell(const unsigned char* p) {
  const char c = static_cast<char>(load<std::uint8_t>(p));
  return {quote_bytes(std::string_view(&c, 1), '\''), json_string(std::string_view(&c, 1))};
}

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

const KnownType* known_type(const ipckit::ObjectInfo& obj) {
  for (const auto& t : kKnownTypes)
    if (obj.type_name == t.code && obj.elem_size == t.size) return &t;
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

// What `inspect` shows as an object's contents.
struct Contents {
  bool decoded = false;      // false: the type is not one the CLI knows
  bool is_array = false;
  bool is_state = false;     // a synchronisation object's state, not data
  std::string text;          // table rendering
  std::string json;          // JSON token: scalar, array or string
  bool truncated = false;    // only `limit` elements shown
  std::string raw_hex;       // unknown types: the first bytes, in hex
};

constexpr std::size_t kRawBytesShown = 64;
constexpr std::size_t kTextShown = 120;  // characters of a char array in a listing

// Semaphores, events, conditions and barriers: their state in a few words,
// read with atomic loads (never through their locks).
template <class State>
const State* sync_state(const ipckit::ObjectInfo& obj, const void* body) {
  return obj.bytes >= sizeof(State) ? static_cast<const State*>(body) : nullptr;
}

Contents read_sync_state(const ipckit::ObjectInfo& obj, const void* body) {
  using K = ipckit::ObjectKind;
  namespace d = ipckit::detail;
  Contents c;
  auto done = [&](const std::string& text, const std::string& json) {
    c.decoded = true;
    c.is_state = true;
    c.text = text;
    c.json = json;
  };
  const auto n = [](auto v) { return std::to_string(v); };
  if (obj.kind == K::Semaphore || obj.kind == K::BoundedSemaphore) {
    if (const auto* s = sync_state<d::SemaphoreState>(obj, body)) {
      const auto value = s->count.load(std::memory_order_relaxed);
      const auto sleepers = s->sleepers.load(std::memory_order_relaxed);
      const auto reclaimed = s->reclaimed.load(std::memory_order_relaxed);
      done(n(value) + "/" + n(s->initial) + " free, " + n(sleepers) + " sleeping" +
               (s->track_holders ? ", tracked, " + n(reclaimed) + " reclaimed" : ""),
           "{\"value\": " + n(value) + ", \"initial\": " + n(s->initial) + ", \"sleepers\": " + n(sleepers) +
               ", \"tracked\": " + (s->track_holders ? "true" : "false") + ", \"reclaimed\": " + n(reclaimed) + "}");
    }
  } else if (obj.kind == K::Event) {
    if (const auto* s = sync_state<d::EventState>(obj, body)) {
      const bool set = s->flag.load(std::memory_order_relaxed) != 0;
      const auto sleepers = s->sleepers.load(std::memory_order_relaxed);
      done(std::string(set ? "set" : "clear") + ", " + n(sleepers) + " sleeping",
           std::string("{\"set\": ") + (set ? "true" : "false") + ", \"sleepers\": " + n(sleepers) + "}");
    }
  } else if (obj.kind == K::Condition) {
    if (const auto* s = sync_state<d::ConditionState>(obj, body)) {
      const auto sleepers = s->sleepers.load(std::memory_order_relaxed);
      const std::string bound = obj.count == 0 ? "its own lock" : "the lock at offset " + n(obj.count);
      done(n(sleepers) + " sleeping, bound to " + bound,
           "{\"sleepers\": " + n(sleepers) + ", \"bound_lock_offset\": " + n(obj.count) + "}");
    }
  } else if (obj.kind == K::Queue || obj.kind == K::JoinableQueue) {
    if (const auto* s = sync_state<d::QueueState>(obj, body)) {
      const auto t = s->tail.load(std::memory_order_relaxed);
      const auto h = s->head.load(std::memory_order_relaxed);
      const auto items = ((t >> d::kPosBits) - (h >> d::kPosBits)) & d::kCountMask;
      const auto bytes = ((t & d::kPosMask) - (h & d::kPosMask)) & d::kPosMask;
      const bool closed = s->closed.load(std::memory_order_relaxed) != 0;
      const auto consumers = s->data_sleepers.load(std::memory_order_relaxed);
      const auto producers = s->space_sleepers.load(std::memory_order_relaxed);
      std::string text = n(items) + " items, " + n(bytes) + "/" + n(s->capacity) + " bytes, " + n(consumers) +
                         " consumer(s) and " + n(producers) + " producer(s) sleeping" + (closed ? ", CLOSED" : "");
      std::string json = "{\"items\": " + n(items) + ", \"bytes\": " + n(bytes) + ", \"capacity\": " +
                         n(s->capacity) + ", \"sleeping_consumers\": " + n(consumers) +
                         ", \"sleeping_producers\": " + n(producers) + ", \"closed\": " + (closed ? "true" : "false");
      if (obj.kind == K::JoinableQueue) {
        const auto unfinished = d::ledger_unfinished(s->tasks, t >> d::kPosBits);
        const auto abandoned = s->tasks.abandoned.load(std::memory_order_relaxed);
        text += ", " + n(unfinished) + " unfinished, " + n(abandoned) + " abandoned";
        json += ", \"unfinished\": " + n(unfinished) + ", \"abandoned\": " + n(abandoned);
        // Who holds tasks it got and has not marked done (its lease).
        std::string held_text, held_json;
        for (std::size_t i = 0; i < d::kLeaseSlots; ++i) {
          const auto pid = s->tasks.pid[i].load(std::memory_order_relaxed);
          const auto got = d::ledger_outstanding(s->tasks.tally[i].load(std::memory_order_relaxed));
          if (pid == 0 || got == 0) continue;
          const bool alive = d::process_alive(pid, s->tasks.start_ticks[i]);
          held_text += (held_text.empty() ? "" : ", ") + n(got) + " by pid " + n(pid) + (alive ? "" : " (dead)");
          held_json += std::string(held_json.empty() ? "" : ", ") + "{\"pid\": " + n(pid) + ", \"tasks\": " + n(got) +
                       ", \"alive\": " + (alive ? "true" : "false") + "}";
        }
        if (!held_text.empty()) text += " (held: " + held_text + ")";
        json += ", \"held\": [" + held_json + "]";
      }
      done(text, json + "}");
    }
  } else if (obj.kind == K::PriorityQueue) {
    if (const auto* s = sync_state<d::PriorityQueueState>(obj, body)) {
      const auto items = s->count.load(std::memory_order_relaxed);
      const auto lowest = s->lowest.load(std::memory_order_relaxed);
      const bool closed = s->closed.load(std::memory_order_relaxed) != 0;
      const auto consumers = s->data_sleepers.load(std::memory_order_relaxed);
      const auto producers = s->space_sleepers.load(std::memory_order_relaxed);
      std::string text = n(items) + " items in " + n(s->slot_count) + " slots of " + n(s->max_message) + " bytes, " +
                         (items > 0 ? "lowest priority " + n(lowest) + ", " : std::string()) + n(consumers) +
                         " consumer(s) and " + n(producers) + " producer(s) sleeping" + (closed ? ", CLOSED" : "");
      std::string json = "{\"items\": " + n(items) + ", \"slots\": " + n(s->slot_count) + ", \"max_message\": " +
                         n(s->max_message) + ", \"lowest_priority\": " + (items > 0 ? n(lowest) : "null") +
                         ", \"sleeping_consumers\": " + n(consumers) + ", \"sleeping_producers\": " + n(producers) +
                         ", \"closed\": " + (closed ? "true" : "false") + "}";
      done(text, json);
    }
  } else if (obj.kind == K::Barrier) {
    if (const auto* s = sync_state<d::BarrierState>(obj, body)) {
      const auto round = s->round.load(std::memory_order_relaxed);
      const auto broken = s->broken.load(std::memory_order_relaxed);
      done(n(s->arrived) + "/" + n(s->parties) + " arrived, round " + n(round) + (broken ? ", BROKEN" : ""),
           "{\"arrived\": " + n(s->arrived) + ", \"parties\": " + n(s->parties) + ", \"round\": " + n(round) +
               ", \"broken\": " + (broken ? "true" : "false") + "}");
    }
  }
  return c;
}

Contents read_contents(const ipckit::ObjectInfo& obj, const void* body, std::size_t limit) {
  Contents c;
  const auto* base = static_cast<const unsigned char*>(body);
  const bool is_value = obj.kind == ipckit::ObjectKind::Value;
  const bool is_array = obj.kind == ipckit::ObjectKind::Array;
  if (!is_value && !is_array) return read_sync_state(obj, body);
  c.is_array = is_array;
  const std::size_t data_offset = is_value ? ipckit::detail::kValueDataOffset : ipckit::detail::kArrayDataOffset;
  const std::uint64_t count = is_value ? 1 : obj.count;
  // Never read past what the directory says the object occupies.
  if (obj.elem_size == 0 || obj.bytes < data_offset || (obj.bytes - data_offset) / obj.elem_size < count) {
    c.text = "<size mismatch>";
    return c;
  }
  const unsigned char* data = base + data_offset;

  const KnownType* type = known_type(obj);
  if (type == nullptr) {
    const std::size_t n = std::min<std::uint64_t>(obj.elem_size * count, kRawBytesShown);
    c.raw_hex = hex_bytes(data, n);
    c.text = "<" + std::to_string(obj.elem_size * count) + " bytes: " + c.raw_hex +
             (obj.elem_size * count > n ? "...>" : ">");
    return c;
  }
  c.decoded = true;

  if (is_value) {
    const Cell cell = type->read(data);
    c.text = cell.text;
    c.json = cell.json;
    return c;
  }

  // A char array is almost always a text buffer: show it as a string up to
  // its first NUL.
  if (obj.type_name == "c") {
    std::string s;
    for (std::uint64_t i = 0; i < count; ++i) {
      const char ch = static_cast<char>(load<std::uint8_t>(data + i));
      if (ch == '\0') break;
      s += ch;
    }
    c.truncated = limit != 0 && s.size() > kTextShown;
    if (c.truncated) s.resize(kTextShown);
    c.text = quote_bytes(s, '"') + (c.truncated ? "..." : "");
    c.json = json_string(s);
    return c;
  }

  const std::uint64_t shown = limit == 0 ? count : std::min<std::uint64_t>(count, limit);
  c.truncated = shown < count;
  c.text = "[";
  c.json = "[";
  for (std::uint64_t i = 0; i < shown; ++i) {
    const Cell cell = type->read(data + i * obj.elem_size);
    if (i != 0) {
      c.text += ", ";
      c.json += ", ";
    }
    c.text += cell.text;
    c.json += cell.json;
  }
  if (c.truncated) c.text += ", ... " + std::to_string(count - shown) + " more";
  c.text += "]";
  c.json += "]";
  return c;
}

// ---------------------------------------------------------------------------
// Locks: every Value, Array, Lock, RLock, Condition and Barrier object starts with its lock.

// "value", "array", "lock", "rlock": the library's kind names, lower-cased.
std::string kind_text(ipckit::ObjectKind kind) {
  std::string s = ipckit::to_string(kind);
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool has_lock(ipckit::ObjectKind kind) {
  using K = ipckit::ObjectKind;
  return kind == K::Value || kind == K::Array || kind == K::Lock || kind == K::RLock || kind == K::Condition ||
         kind == K::Barrier;
}

struct LockView {
  bool available = false;               // the object has a lock the CLI can read
  std::optional<ipckit::LockHolder> holder;
  std::uint64_t recoveries = 0;
  std::uint64_t contended = 0;          // slow-path acquisitions
  std::string error;                    // the library could not tell
};

LockView read_lock(const ipckit::Segment& seg, const ipckit::ObjectInfo& obj, const void* body) {
  LockView v;
  if (!has_lock(obj.kind) || body == nullptr || obj.bytes < sizeof(ipckit::detail::LockState)) return v;
  v.available = true;
  const auto* state = static_cast<const ipckit::detail::LockState*>(body);
  v.recoveries = state->recoveries.load(std::memory_order_relaxed);
  v.contended = state->acquisitions.load(std::memory_order_relaxed);
  try {
    v.holder = seg.holder_of(obj.name);
  } catch (const ipckit::Error& e) {
    v.error = e.what();
  }
  return v;
}

std::string holder_text(const LockView& v) {
  if (!v.available) return "-";
  if (!v.error.empty()) return "?";
  if (!v.holder) return "free";
  const auto& h = *v.holder;
  if (h.pid == 0) return "tid " + std::to_string(h.tid) + " (dead)";
  return "pid " + std::to_string(h.pid) + (h.alive ? " (alive)" : " (dead)");
}

void write_lock_json(JsonWriter& j, const LockView& v) {
  j.key("lock");
  if (!v.available) {
    j.null();
    return;
  }
  j.begin_object();
  j.field("held", v.holder.has_value());
  if (v.holder) {
    j.field("pid", v.holder->pid);
    j.field("tid", v.holder->tid);
    j.field("alive", v.holder->alive);
  }
  j.field("recoveries", v.recoveries);
  j.field("contended", v.contended);
  if (!v.error.empty()) j.field("error", v.error);
  j.end_object();
}

// ---------------------------------------------------------------------------
// Segment summaries (ls, and the head of inspect).

void write_info_json(JsonWriter& j, const ipckit::SegmentInfo& info) {
  j.field("name", info.name);
  j.field("size", info.size);
  j.field("used", info.used);
  j.field("objects", info.objects);
  j.field("max_objects", info.max_objects);
  j.field("creator_pid", info.creator_pid);
  j.field("creator_alive", info.creator_alive);
  j.field("created_unix", info.created_unix);
  j.key("age_seconds");
  if (info.created_unix > 0) {
    j.value(now_unix() - info.created_unix);
  } else {
    j.null();
  }
  j.field("mode", octal_mode(info.mode));
  j.field("owner_uid", static_cast<std::uint64_t>(info.owner_uid));
}

std::string creator_text(const ipckit::SegmentInfo& info) {
  if (info.creator_pid <= 0) return "?";
  return std::to_string(info.creator_pid) + (info.creator_alive ? " (alive)" : " (dead)");
}

std::string age_text(const ipckit::SegmentInfo& info) {
  return info.created_unix > 0 ? human_age(now_unix() - info.created_unix) : "?";
}

// ---------------------------------------------------------------------------
// Subcommands

int cmd_ls(bool json) {
  struct Entry {
    std::string name;
    std::optional<ipckit::SegmentInfo> info;
    std::string error;
  };
  std::vector<Entry> entries;
  auto names = ipckit::Segment::list();
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    Entry e{name, std::nullopt, {}};
    // One unreadable segment (corrupt, someone else's) must not hide the rest.
    try {
      e.info = ipckit::Segment::open(name).info();
    } catch (const ipckit::NotFound&) {
      continue;  // removed since list()
    } catch (const ipckit::Error& err) {
      e.error = err.what();
    }
    entries.push_back(std::move(e));
  }

  if (json) {
    JsonWriter j(std::cout);
    j.begin_object().key("segments").begin_array();
    for (const auto& e : entries) {
      j.begin_object();
      if (e.info) {
        write_info_json(j, *e.info);
      } else {
        j.field("name", e.name);
        j.field("error", e.error);
      }
      j.end_object();
    }
    j.end_array().end_object().finish();
    return 0;
  }

  if (entries.empty()) {
    std::cout << "no ipckit segments\n";
    return 0;
  }
  Table t({"NAME", "SIZE", "USED", "OBJECTS", "CREATOR", "AGE", "MODE"});
  for (const auto& e : entries) {
    if (!e.info) {
      t.add({e.name, "error: " + e.error});
      continue;
    }
    const auto& i = *e.info;
    t.add({i.name, human_bytes(i.size), human_bytes(i.used), std::to_string(i.objects), creator_text(i),
           age_text(i), octal_mode(i.mode)});
  }
  t.print(std::cout);
  return 0;
}

int cmd_inspect(const std::string& seg_name, const std::optional<std::string>& obj_name, bool json,
                std::optional<std::size_t> limit_opt) {
  const auto seg = ipckit::Segment::open(seg_name);
  const auto info = seg.info();
  auto objects = seg.objects();
  if (obj_name) {
    auto it = std::find_if(objects.begin(), objects.end(), [&](const auto& o) { return o.name == *obj_name; });
    if (it == objects.end()) {
      std::string known;
      for (const auto& o : objects) known += (known.empty() ? "" : ", ") + o.name;
      throw ipckit::NotFound(*obj_name, "no object '" + *obj_name + "' in segment '" + seg_name + "'" +
                                            (known.empty() ? std::string(" (it has no objects)")
                                                           : " (its objects: " + known + ")"));
    }
    objects = {*it};
  }
  // One object: show every element unless asked otherwise; a listing: a few.
  const std::size_t limit = limit_opt.value_or(obj_name ? 0 : 8);

  struct Row {
    ipckit::ObjectInfo obj;
    LockView lock;
    Contents contents;
    std::string error;
  };
  std::vector<Row> rows;
  for (const auto& o : objects) {
    Row r{o, {}, {}, {}};
    try {
      ipckit::ObjectInfo checked;
      const void* body = seg.object_body(o.name, &checked);
      r.obj = checked;
      r.lock = read_lock(seg, r.obj, body);
      r.contents = read_contents(r.obj, body, limit);
    } catch (const ipckit::Error& e) {
      if (obj_name) throw;
      r.error = e.what();
    }
    rows.push_back(std::move(r));
  }

  if (json) {
    JsonWriter j(std::cout);
    j.begin_object().key("segment").begin_object();
    write_info_json(j, info);
    j.end_object().key("objects").begin_array();
    for (const auto& r : rows) {
      j.begin_object();
      j.field("name", r.obj.name);
      j.field("kind", kind_text(r.obj.kind));
      j.field("type", r.obj.type_name);
      j.field("type_pretty", pretty_type(r.obj.type_name));
      j.field("elem_size", r.obj.elem_size);
      j.field("count", r.obj.count);
      j.field("offset", r.obj.offset);
      j.field("bytes", r.obj.bytes);
      if (!r.error.empty()) {
        j.field("error", r.error);
      } else {
        write_lock_json(j, r.lock);
        if (r.contents.decoded) {
          j.key(r.contents.is_state ? "state" : r.contents.is_array ? "values" : "value").raw(r.contents.json);
          if (r.contents.is_array) j.field("truncated", r.contents.truncated);
        } else if (!r.contents.raw_hex.empty()) {
          j.field("raw_hex", r.contents.raw_hex);
        }
      }
      j.end_object();
    }
    j.end_array().end_object().finish();
    return 0;
  }

  std::cout << "segment '" << info.name << "': " << human_bytes(info.size) << ", " << human_bytes(info.used)
            << " used, " << info.objects << "/" << info.max_objects << " objects, mode "
            << octal_mode(info.mode) << ", owner uid " << info.owner_uid << "\n"
            << "created by pid " << creator_text(info) << ", " << age_text(info) << " ago\n\n";
  if (rows.empty()) {
    std::cout << "no objects\n";
    return 0;
  }
  Table t({"NAME", "KIND", "TYPE", "COUNT", "BYTES", "LOCK HOLDER", "RECOVERIES", "VALUE / STATE"});
  for (const auto& r : rows) {
    std::string type = pretty_type(r.obj.type_name);
    if (type.empty()) type = "-";
    if (!r.error.empty()) {
      t.add({r.obj.name, kind_text(r.obj.kind), type, std::to_string(r.obj.count),
             std::to_string(r.obj.bytes), "?", "?", "error: " + r.error});
      continue;
    }
    t.add({r.obj.name, kind_text(r.obj.kind), type, std::to_string(r.obj.count),
           std::to_string(r.obj.bytes), holder_text(r.lock),
           r.lock.available ? std::to_string(r.lock.recoveries) : "-", r.contents.text.empty() ? "-" : r.contents.text});
  }
  t.print(std::cout);
  for (const auto& r : rows) {
    if (!r.lock.error.empty()) std::cout << "note: " << r.obj.name << ": " << r.lock.error << "\n";
    if (r.lock.holder && !r.lock.holder->alive)
      std::cout << "note: the holder of '" << r.obj.name
                << "' is dead; its next acquirer takes the lock over and is told (owner_died)\n";
  }
  return 0;
}

int cmd_rm(const std::vector<std::string>& names, bool force) {
  int status = 0;
  for (const auto& name : names) {
    try {
      if (!ipckit::Segment::remove(name) && !force) {
        std::cerr << "ipckit: no segment named '" << name << "' to remove (see `ipckit ls`)\n";
        status = 1;
      }
    } catch (const ipckit::Error& e) {
      std::cerr << "ipckit: " << e.what() << "\n";
      status = 1;
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipckit: inspect and manage ipckit shared-memory segments", "ipckit"};
  app.require_subcommand(1);

  bool ls_json = false;
  auto* ls = app.add_subcommand("ls", "List every ipckit segment: size, use, objects, creator, age");
  ls->add_flag("--json", ls_json, "Print JSON instead of a table");

  std::string inspect_seg;
  std::string inspect_obj;
  bool inspect_json = false;
  std::size_t inspect_limit = 0;
  auto* inspect = app.add_subcommand("inspect", "Show a segment's objects: kind, type, values and lock holders");
  inspect->add_option("segment", inspect_seg, "Segment name")->required();
  auto* obj_opt = inspect->add_option("object", inspect_obj, "Only this object (shows all of its elements)");
  inspect->add_flag("--json", inspect_json, "Print JSON instead of a table");
  auto* limit_opt = inspect->add_option(
      "--limit", inspect_limit, "Array elements to show (0: all; default 8, or all for a single object)");

  std::vector<std::string> rm_names;
  bool rm_force = false;
  auto* rm = app.add_subcommand(
      "rm", "Remove segments by name (processes that have one mapped keep using it until they exit)");
  rm->add_option("segment", rm_names, "Segment names")->required();
  rm->add_flag("-f,--force", rm_force, "Do not complain about segments that do not exist");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  try {
    if (*ls) return cmd_ls(ls_json);
    if (*inspect) {
      return cmd_inspect(inspect_seg, obj_opt->count() ? std::optional(inspect_obj) : std::nullopt, inspect_json,
                         limit_opt->count() ? std::optional(inspect_limit) : std::nullopt);
    }
    if (*rm) return cmd_rm(rm_names, rm_force);
  } catch (const ipckit::Error& e) {
    std::cerr << "ipckit: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ipckit: unexpected error: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
