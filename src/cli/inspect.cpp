// What `ipckit inspect` and `ipckit ls` print. JSON goes through
// nlohmann::json, dumped with error_handler_t::replace: it validates UTF-8
// strictly (overlong forms, surrogates and 0xF5-0xFF are errors) and puts
// U+FFFD in place of invalid bytes, so the output is always valid JSON in
// valid UTF-8 whatever the segment's bytes. Human output escapes every
// string read from the segment or /dev/shm (text.hpp).
#include "inspect.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "ipckit/ipckit.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

using Json = nlohmann::ordered_json;  // keys in the order written, as before

std::string dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n"; }

std::int64_t now_unix() { return static_cast<std::int64_t>(std::time(nullptr)); }

// "long" for "l", "my::Point" for "N2my5PointE"; the raw name when it does
// not demangle. Unescaped: the caller escapes or JSON-encodes it.
std::string pretty_type(const std::string& raw) {
  if (raw.empty()) return {};
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status),
                                             std::free);
  if (status == 0 && out) return out.get();
  return raw;
}

// ---------------------------------------------------------------------------
// Decoding the values of Value and Array objects.

// One decoded element: escaped text for the table, a value for JSON.
struct Cell {
  std::string text;
  Json json;
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
  if constexpr (std::is_same_v<T, bool>) {
    return {v ? "true" : "false", v};
  } else if constexpr (std::is_floating_point_v<T>) {
    return float_cell(v);
  } else {
    return {integer_text(v), v};
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
  if (byte > 1) return {"true(" + std::to_string(byte) + ")", true};
  return {byte != 0 ? "true" : "false", byte != 0};
}

Cell char_cell(const unsigned char* p) {
  const char c = static_cast<char>(load<std::uint8_t>(p));
  return {quote_text(std::string_view(&c, 1), '\''), std::string(1, c)};
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

const KnownType* known_type(const ObjectInfo& obj) {
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
  bool decoded = false;   // false: the type is not one the CLI knows
  bool is_array = false;
  bool is_state = false;  // a synchronisation object's state, not data
  std::string text;       // table rendering, escaped
  Json json;              // scalar, array, string or state object
  bool truncated = false; // only `limit` elements shown
  std::string raw_hex;    // unknown types: the first bytes, in hex
};

constexpr std::size_t kRawBytesShown = 64;
constexpr std::size_t kTextShown = 120;  // characters of a char array in a listing

// Semaphores, events, conditions and barriers: their state in a few words,
// read with atomic loads (never through their locks).
template <class State>
const State* sync_state(const ObjectInfo& obj, const void* body) {
  return obj.bytes >= sizeof(State) ? static_cast<const State*>(body) : nullptr;
}

std::string n(std::uint64_t v) { return std::to_string(v); }

Contents read_sync_state(const ObjectInfo& obj, const void* body) {
  using K = ObjectKind;
  namespace d = detail;
  Contents c;
  auto done = [&](std::string text, Json json) {
    c.decoded = true;
    c.is_state = true;
    c.text = std::move(text);
    c.json = std::move(json);
  };
  if (obj.kind == K::Semaphore || obj.kind == K::BoundedSemaphore) {
    if (const auto* s = sync_state<d::SemaphoreState>(obj, body)) {
      const auto value = s->count.load(std::memory_order_relaxed);
      const auto sleepers = detail::sleeper_count(s->sleepers.load(std::memory_order_relaxed));
      const auto reclaimed = s->reclaimed.load(std::memory_order_relaxed);
      const bool tracked = s->track_holders != 0;
      done(n(value) + "/" + n(s->initial) + " free, " + n(sleepers) + " sleeping" +
               (tracked ? ", tracked, " + n(reclaimed) + " reclaimed" : ""),
           Json{{"value", value},
                {"initial", s->initial},
                {"sleepers", sleepers},
                {"tracked", tracked},
                {"reclaimed", reclaimed}});
    }
  } else if (obj.kind == K::Event) {
    if (const auto* s = sync_state<d::EventState>(obj, body)) {
      const bool set = s->flag.load(std::memory_order_relaxed) != 0;
      const auto sleepers = detail::sleeper_count(s->sleepers.load(std::memory_order_relaxed));
      done(std::string(set ? "set" : "clear") + ", " + n(sleepers) + " sleeping",
           Json{{"set", set}, {"sleepers", sleepers}});
    }
  } else if (obj.kind == K::Condition) {
    if (const auto* s = sync_state<d::ConditionState>(obj, body)) {
      const auto sleepers = detail::sleeper_count(s->sleepers.load(std::memory_order_relaxed));
      const std::string bound = obj.count == 0 ? "its own lock" : "the lock at offset " + n(obj.count);
      done(n(sleepers) + " sleeping, bound to " + bound, Json{{"sleepers", sleepers}, {"bound_lock_offset", obj.count}});
    }
  } else if (obj.kind == K::Queue || obj.kind == K::JoinableQueue) {
    if (const auto* s = sync_state<d::QueueState>(obj, body)) {
      const auto t = s->tail.load(std::memory_order_relaxed);
      const auto h = s->head.load(std::memory_order_relaxed);
      const auto items = ((t >> d::kPosBits) - (h >> d::kPosBits)) & d::kCountMask;
      const auto bytes = ((t & d::kPosMask) - (h & d::kPosMask)) & d::kPosMask;
      const bool closed = s->closed.load(std::memory_order_relaxed) != 0;
      const auto consumers = detail::sleeper_count(s->data_sleepers.load(std::memory_order_relaxed));
      const auto producers = detail::sleeper_count(s->space_sleepers.load(std::memory_order_relaxed));
      std::string text = n(items) + " items, " + n(bytes) + "/" + n(s->capacity) + " bytes, " + n(consumers) +
                         " consumer(s) and " + n(producers) + " producer(s) sleeping" + (closed ? ", CLOSED" : "");
      Json json{{"items", items},
                {"bytes", bytes},
                {"capacity", s->capacity},
                {"sleeping_consumers", consumers},
                {"sleeping_producers", producers},
                {"closed", closed}};
      if (obj.kind == K::JoinableQueue) {
        const auto unfinished = d::ledger_unfinished(s->tasks, t >> d::kPosBits);
        const auto abandoned = s->tasks.abandoned.load(std::memory_order_relaxed);
        text += ", " + n(unfinished) + " unfinished, " + n(abandoned) + " abandoned";
        json["unfinished"] = unfinished;
        json["abandoned"] = abandoned;
        // Who holds tasks it got and has not marked done (its lease).
        std::string held_text;
        Json held = Json::array();
        for (std::size_t i = 0; i < d::kLeaseSlots; ++i) {
          const auto pid = s->tasks.pid[i].load(std::memory_order_relaxed);
          const auto got = d::ledger_outstanding(s->tasks.tally[i].load(std::memory_order_relaxed));
          if (pid == 0 || got == 0) continue;
          const bool alive = d::process_alive(pid, s->tasks.start_ticks[i]);
          held_text += (held_text.empty() ? "" : ", ") + n(got) + " by pid " + n(pid) + (alive ? "" : " (dead)");
          held.push_back(Json{{"pid", pid}, {"tasks", got}, {"alive", alive}});
        }
        if (!held_text.empty()) text += " (held: " + held_text + ")";
        json["held"] = std::move(held);
      }
      done(std::move(text), std::move(json));
    }
  } else if (obj.kind == K::PriorityQueue) {
    if (const auto* s = sync_state<d::PriorityQueueState>(obj, body)) {
      const auto items = s->count.load(std::memory_order_relaxed);
      const auto lowest = s->lowest.load(std::memory_order_relaxed);
      const bool closed = s->closed.load(std::memory_order_relaxed) != 0;
      const auto consumers = detail::sleeper_count(s->data_sleepers.load(std::memory_order_relaxed));
      const auto producers = detail::sleeper_count(s->space_sleepers.load(std::memory_order_relaxed));
      std::string text = n(items) + " items in " + n(s->slot_count) + " slots of " + n(s->max_message) + " bytes, " +
                         (items > 0 ? "lowest priority " + std::to_string(lowest) + ", " : std::string()) +
                         n(consumers) + " consumer(s) and " + n(producers) + " producer(s) sleeping" +
                         (closed ? ", CLOSED" : "");
      done(std::move(text), Json{{"items", items},
                                 {"slots", s->slot_count},
                                 {"max_message", s->max_message},
                                 {"lowest_priority", items > 0 ? Json(lowest) : Json(nullptr)},
                                 {"sleeping_consumers", consumers},
                                 {"sleeping_producers", producers},
                                 {"closed", closed}});
    }
  } else if (obj.kind == K::Barrier) {
    if (const auto* s = sync_state<d::BarrierState>(obj, body)) {
      const auto round = s->round.load(std::memory_order_relaxed);
      const bool broken = detail::barrier_broken(s->broken.load(std::memory_order_relaxed));  // not a sealed round
      done(n(s->arrived) + "/" + n(s->parties) + " arrived, round " + n(round) + (broken ? ", BROKEN" : ""),
           Json{{"arrived", s->arrived}, {"parties", s->parties}, {"round", round}, {"broken", broken}});
    }
  }
  return c;
}

Contents read_contents(const ObjectInfo& obj, const void* body, std::size_t limit) {
  Contents c;
  const auto* base = static_cast<const unsigned char*>(body);
  const bool is_value = obj.kind == ObjectKind::Value;
  const bool is_array = obj.kind == ObjectKind::Array;
  if (!is_value && !is_array) return read_sync_state(obj, body);
  c.is_array = is_array;
  const std::size_t data_offset = is_value ? detail::kValueDataOffset : detail::kArrayDataOffset;
  const std::uint64_t count = is_value ? 1 : obj.count;
  // Never read past what the directory says the object occupies.
  if (obj.elem_size == 0 || obj.bytes < data_offset || (obj.bytes - data_offset) / obj.elem_size < count) {
    c.text = "<size mismatch>";
    return c;
  }
  const unsigned char* data = base + data_offset;
  const std::uint64_t data_bytes = std::uint64_t{obj.elem_size} * count;  // <= obj.bytes: checked above

  const KnownType* type = known_type(obj);
  if (type == nullptr) {
    const std::size_t shown = std::min<std::uint64_t>(data_bytes, kRawBytesShown);
    c.raw_hex = hex_bytes(data, shown);
    c.text = "<" + std::to_string(data_bytes) + " bytes: " + c.raw_hex + (data_bytes > shown ? "...>" : ">");
    return c;
  }
  c.decoded = true;

  if (is_value) {
    Cell cell = type->read(data);
    c.text = std::move(cell.text);
    c.json = std::move(cell.json);
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
    c.text = quote_text(s, '"') + (c.truncated ? "..." : "");
    c.json = s;
    return c;
  }

  const std::uint64_t shown = limit == 0 ? count : std::min<std::uint64_t>(count, limit);
  c.truncated = shown < count;
  c.text = "[";
  c.json = Json::array();
  for (std::uint64_t i = 0; i < shown; ++i) {
    Cell cell = type->read(data + i * obj.elem_size);
    if (i != 0) c.text += ", ";
    c.text += cell.text;
    c.json.push_back(std::move(cell.json));
  }
  if (c.truncated) c.text += ", ... " + std::to_string(count - shown) + " more";
  c.text += "]";
  return c;
}

// ---------------------------------------------------------------------------
// Locks: every Value, Array, Lock, RLock, Condition and Barrier object starts with its lock.

// "value", "array", "lock", "rlock": the library's kind names, lower-cased.
std::string kind_text(ObjectKind kind) {
  std::string s = to_string(kind);
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool has_lock(ObjectKind kind) {
  using K = ObjectKind;
  return kind == K::Value || kind == K::Array || kind == K::Lock || kind == K::RLock || kind == K::Condition ||
         kind == K::Barrier;
}

struct LockView {
  bool available = false;  // the object has a lock the CLI can read
  std::optional<LockHolder> holder;
  std::uint64_t recoveries = 0;
  std::uint64_t contended = 0;  // slow-path acquisitions
  std::string error;            // the library could not tell (unescaped)
};

LockView read_lock(const Segment& seg, const ObjectInfo& obj, const void* body) {
  LockView v;
  if (!has_lock(obj.kind) || body == nullptr || obj.bytes < sizeof(detail::LockState)) return v;
  v.available = true;
  const auto* state = static_cast<const detail::LockState*>(body);
  v.recoveries = state->recoveries.load(std::memory_order_relaxed);
  v.contended = state->acquisitions.load(std::memory_order_relaxed);
  try {
    v.holder = seg.holder_of(obj.name);
  } catch (const Error& e) {
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

Json lock_json(const LockView& v) {
  if (!v.available) return nullptr;
  Json j{{"held", v.holder.has_value()}};
  if (v.holder) {
    j["pid"] = v.holder->pid;
    j["tid"] = v.holder->tid;
    j["alive"] = v.holder->alive;
  }
  j["recoveries"] = v.recoveries;
  j["contended"] = v.contended;
  if (!v.error.empty()) j["error"] = v.error;
  return j;
}

// ---------------------------------------------------------------------------
// Segment summaries (ls, and the head of inspect).

void add_info_json(Json& j, const SegmentInfo& info) {
  j["name"] = info.name;
  j["size"] = info.size;
  j["used"] = info.used;
  j["objects"] = info.objects;
  j["max_objects"] = info.max_objects;
  j["creator_pid"] = info.creator_pid;
  j["creator_alive"] = info.creator_alive;
  j["created_unix"] = info.created_unix;
  j["age_seconds"] = info.created_unix > 0 ? Json(now_unix() - info.created_unix) : Json(nullptr);
  j["mode"] = octal_mode(info.mode);
  j["owner_uid"] = static_cast<std::uint64_t>(info.owner_uid);
}

std::string creator_text(const SegmentInfo& info) {
  if (info.creator_pid <= 0) return "?";
  return std::to_string(info.creator_pid) + (info.creator_alive ? " (alive)" : " (dead)");
}

std::string age_text(const SegmentInfo& info) {
  return info.created_unix > 0 ? human_age(now_unix() - info.created_unix) : "?";
}

// ---------------------------------------------------------------------------
// inspect

struct Row {
  ObjectInfo obj;
  LockView lock;
  Contents contents;
  std::string error;  // unescaped
};

std::vector<Row> read_rows(const Segment& seg, const InspectOptions& options) {
  auto objects = seg.objects();
  if (options.object) {
    const auto& want = *options.object;
    auto it = std::find_if(objects.begin(), objects.end(), [&](const auto& o) { return o.name == want; });
    if (it == objects.end()) {
      std::string known;
      for (const auto& o : objects) known += (known.empty() ? "" : ", ") + o.name;
      throw NotFound(want, "no object '" + want + "' in segment '" + seg.name() + "'" +
                               (known.empty() ? std::string(" (it has no objects)") : " (its objects: " + known + ")"));
    }
    objects = {*it};
  }
  // One object: show every element unless asked otherwise; a listing: a few.
  const std::size_t limit = options.limit.value_or(options.object ? 0 : 8);
  std::vector<Row> rows;
  for (const auto& o : objects) {
    Row r{o, {}, {}, {}};
    try {
      ObjectInfo checked;
      const void* body = seg.object_body(o.name, &checked);
      r.obj = checked;
      r.lock = read_lock(seg, r.obj, body);
      r.contents = read_contents(r.obj, body, limit);
    } catch (const Error& e) {
      if (options.object) throw;
      r.error = e.what();
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string inspect_json(const SegmentInfo& info, const std::vector<Row>& rows) {
  Json segment = Json::object();
  add_info_json(segment, info);
  Json objects = Json::array();
  for (const auto& r : rows) {
    Json o{{"name", r.obj.name},
           {"kind", kind_text(r.obj.kind)},
           {"type", r.obj.type_name},
           {"type_pretty", pretty_type(r.obj.type_name)},
           {"elem_size", r.obj.elem_size},
           {"count", r.obj.count},
           {"offset", r.obj.offset},
           {"bytes", r.obj.bytes}};
    if (!r.error.empty()) {
      o["error"] = r.error;
    } else {
      o["lock"] = lock_json(r.lock);
      if (r.contents.decoded) {
        o[r.contents.is_state ? "state" : r.contents.is_array ? "values" : "value"] = r.contents.json;
        if (r.contents.is_array) o["truncated"] = r.contents.truncated;
      } else if (!r.contents.raw_hex.empty()) {
        o["raw_hex"] = r.contents.raw_hex;
      }
    }
    objects.push_back(std::move(o));
  }
  return dump(Json{{"segment", std::move(segment)}, {"objects", std::move(objects)}});
}

std::string inspect_text(const SegmentInfo& info, const std::vector<Row>& rows) {
  std::ostringstream out;
  out << "segment '" << escape_text(info.name) << "': " << human_bytes(info.size) << ", " << human_bytes(info.used)
      << " used, " << info.objects << "/" << info.max_objects << " objects, mode " << octal_mode(info.mode)
      << ", owner uid " << info.owner_uid << "\n"
      << "created by pid " << creator_text(info) << ", " << age_text(info) << " ago\n\n";
  if (rows.empty()) {
    out << "no objects\n";
    return out.str();
  }
  Table t({"NAME", "KIND", "TYPE", "COUNT", "BYTES", "LOCK HOLDER", "RECOVERIES", "VALUE / STATE"});
  for (const auto& r : rows) {
    std::string type = escape_text(pretty_type(r.obj.type_name));
    if (type.empty()) type = "-";
    const std::string name = escape_text(r.obj.name);
    if (!r.error.empty()) {
      t.add({name, kind_text(r.obj.kind), type, std::to_string(r.obj.count), std::to_string(r.obj.bytes), "?", "?",
             "error: " + escape_text(r.error)});
      continue;
    }
    t.add({name, kind_text(r.obj.kind), type, std::to_string(r.obj.count), std::to_string(r.obj.bytes),
           holder_text(r.lock), r.lock.available ? std::to_string(r.lock.recoveries) : "-",
           r.contents.text.empty() ? "-" : r.contents.text});
  }
  t.print(out);
  for (const auto& r : rows) {
    if (!r.lock.error.empty()) out << "note: " << escape_text(r.obj.name) << ": " << escape_text(r.lock.error) << "\n";
    if (r.lock.holder && !r.lock.holder->alive)
      out << "note: the holder of '" << escape_text(r.obj.name)
          << "' is dead; its next acquirer takes the lock over and is told (owner_died)\n";
  }
  return out.str();
}

// ---------------------------------------------------------------------------
// ls

// The listing's shared state: outlives gather_ls() if an open is still
// running at its deadline (the thread doing it holds a reference).
struct LsWork {
  std::vector<std::string> names;
  std::vector<LsEntry> entries;
  std::vector<char> done, removed;
  std::atomic<std::size_t> next{0};
  std::mutex m;
  std::condition_variable cv;
  std::size_t finished = 0;
};

void open_one(LsWork& w, std::size_t i) {
  LsEntry e{w.names[i], std::nullopt, {}};
  bool removed = false;
  // One unreadable segment (corrupt, someone else's, slow) must not hide the rest.
  try {
    OpenOptions look;  // ls only looks, so any owner's segment is listed
    look.any_owner = true;
    e.info = Segment::open(e.name, look).info();
  } catch (const NotFound&) {
    removed = true;  // removed since list()
  } catch (const Error& err) {
    e.error = err.what();
  } catch (const std::exception& err) {
    e.error = std::string("unexpected error: ") + err.what();
  }
  std::lock_guard g(w.m);
  w.entries[i] = std::move(e);
  w.removed[i] = removed ? 1 : 0;
  w.done[i] = 1;
  ++w.finished;
  w.cv.notify_all();
}

constexpr std::size_t kLsWorkers = 8;

}  // namespace

void render_inspect(std::ostream& out, const Segment& seg, const InspectOptions& options) {
  const auto info = seg.info();
  const auto rows = read_rows(seg, options);
  out << (options.json ? inspect_json(info, rows) : inspect_text(info, rows));
}

std::string render_inspect(const Segment& seg, bool json) {
  std::ostringstream out;
  InspectOptions options;
  options.json = json;
  render_inspect(out, seg, options);
  return out.str();
}

LsListing gather_ls(std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  auto w = std::make_shared<LsWork>();
  w->names = Segment::list();
  std::sort(w->names.begin(), w->names.end());
  const std::size_t count = w->names.size();
  w->entries.resize(count);
  w->done.assign(count, 0);
  w->removed.assign(count, 0);
  std::vector<std::thread> workers;
  for (std::size_t k = 0; k < std::min(count, kLsWorkers); ++k) {
    workers.emplace_back([w] {
      for (std::size_t i; (i = w->next.fetch_add(1)) < w->names.size();) open_one(*w, i);
    });
  }
  LsListing out;
  std::unique_lock lock(w->m);
  const bool all = w->cv.wait_until(lock, end, [&] { return w->finished == count; });
  // An open still running may never end (a file locked by a stopped
  // process): leave its thread behind rather than wait.
  for (auto& t : workers) {
    if (all) {
      t.join();  // each is past its last open: quick
    } else {
      t.detach();
    }
  }
  const auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count() / 1000.0;
  char waited[32];
  std::snprintf(waited, sizeof waited, "%.1f", secs);
  for (std::size_t i = 0; i < count; ++i) {
    if (!w->done[i]) {
      out.complete = false;
      out.entries.push_back(LsEntry{w->names[i], std::nullopt,
                                    "segment '" + w->names[i] + "' could not be opened within " + waited +
                                        " s (its creator, or whoever holds a lock on its file, may be stopped); "
                                        "try `ipckit inspect " + w->names[i] + "`"});
    } else if (!w->removed[i]) {
      out.entries.push_back(w->entries[i]);
    }
  }
  // Workers not yet started must not open anything more.
  w->next.store(count);
  return out;
}

void render_ls(std::ostream& out, const std::vector<LsEntry>& entries, bool json) {
  if (json) {
    Json segments = Json::array();
    for (const auto& e : entries) {
      Json s = Json::object();
      if (e.info) {
        add_info_json(s, *e.info);
      } else {
        s["name"] = e.name;
        s["error"] = e.error;
      }
      segments.push_back(std::move(s));
    }
    out << dump(Json{{"segments", std::move(segments)}});
    return;
  }
  if (entries.empty()) {
    out << "no ipckit segments\n";
    return;
  }
  Table t({"NAME", "SIZE", "USED", "OBJECTS", "CREATOR", "AGE", "MODE"});
  for (const auto& e : entries) {
    if (!e.info) {
      t.add({escape_text(e.name), "error: " + escape_text(e.error)});
      continue;
    }
    const auto& i = *e.info;
    t.add({escape_text(i.name), human_bytes(i.size), human_bytes(i.used), std::to_string(i.objects), creator_text(i),
           age_text(i), octal_mode(i.mode)});
  }
  t.print(out);
}

}  // namespace ipckit::cli
