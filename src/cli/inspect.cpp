// What `ipckit inspect` prints (inspect.hpp): a segment's summary, then one
// row per object (its library snapshot, or why there is none), as a table or
// as one JSON document. Each object is rendered through its kind's row of
// the table of kinds (kinds.hpp).
#include "inspect.hpp"

#include <algorithm>
#include <ostream>
#include <sstream>
#include <utility>
#include <vector>

#include "ipckit/inspect.hpp"
#include "ipckit/process_table.hpp"
#include "json.hpp"
#include "kinds.hpp"
#include "pool_view.hpp"
#include "tables.hpp"
#include "text.hpp"
#include "values.hpp"

namespace ipckit::cli {
namespace {

// One object as inspect shows it: its snapshot, or why there is none.
struct Row {
  ObjectSnapshot snap;
  std::string error;  // unescaped
};

std::vector<ObjectInfo> chosen_objects(const Segment& seg, const InspectOptions& options) {
  auto objects = seg.objects();
  if (!options.object) return objects;
  const auto& want = *options.object;
  const auto it = std::find_if(objects.begin(), objects.end(), [&](const auto& o) { return o.name == want; });
  if (it == objects.end()) {
    std::string known;
    for (const auto& o : objects) known += (known.empty() ? "" : ", ") + o.name;
    throw NotFound(want, "no object '" + want + "' in segment '" + seg.name() + "'" +
                             (known.empty() ? std::string(" (it has no objects)") : " (its objects: " + known + ")"));
  }
  return {*it};
}

std::vector<Row> read_rows(const Segment& seg, const InspectOptions& options, std::size_t limit) {
  std::vector<Row> rows;
  for (const auto& o : chosen_objects(seg, options)) {
    Row r{{o, {}}, {}};
    try {
      r.snap = seg.inspect(o.name, elements_needed(limit));
    } catch (const Error& e) {
      if (options.object) throw;  // one object asked for: its error is the command's
      r.error = e.what();
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string inspect_json(const SegmentInfo& info, std::uint32_t attached, const std::vector<Row>& rows,
                         std::size_t limit, const std::optional<PoolSnapshot>& pool) {
  Json segment = Json::object();
  add_segment_json(segment, info);
  segment["processes"] = attached;
  Json objects = Json::array();
  for (const auto& r : rows) {
    const auto& i = r.snap.info;
    Json o{{"name", i.name},           {"kind", kind_name(i.kind)},
           {"type", i.type_name},      {"type_pretty", pretty_type(i.type_name)},
           {"elem_size", i.elem_size}, {"count", i.count},
           {"offset", i.offset},       {"bytes", i.bytes}};
    if (!r.error.empty()) {
      o["error"] = r.error;
    } else {
      const KindView& kind = kind_view(i.kind);
      const auto lock = kind.lock(r.snap);
      o["lock"] = lock ? lock_json(*lock) : Json(nullptr);
      kind.json(o, r.snap, limit);
    }
    objects.push_back(std::move(o));
  }
  Json doc{{"segment", std::move(segment)}, {"objects", std::move(objects)}};
  if (pool) doc["pool"] = pool_json(*pool);
  return dump(doc);
}

std::string inspect_text(const SegmentInfo& info, std::uint32_t attached, const std::vector<Row>& rows,
                         std::size_t limit, const std::optional<PoolSnapshot>& pool) {
  std::ostringstream out;
  out << "segment '" << escape_text(info.name) << "': " << human_bytes(info.size) << ", " << human_bytes(info.used)
      << " used, " << info.objects << "/" << info.max_objects << " objects, mode " << octal_mode(info.mode)
      << ", owner uid " << info.owner_uid << "\n"
      << "created by pid " << creator_text(info) << ", " << age_text(info) << " ago\n"
      << attached << " process(es) attached (" << info.max_processes << " table slots), deadlock detection "
      << (info.deadlock_detection ? "on" : "off") << "\n\n";
  if (rows.empty()) {
    out << "no objects\n";
    return out.str();
  }
  Table t({"NAME", "KIND", "TYPE", "COUNT", "BYTES", "LOCK HOLDER", "RECOVERIES", "VALUE / STATE"});
  std::vector<std::string> notes;
  for (const auto& r : rows) {
    const auto& i = r.snap.info;
    std::string type = escape_text(pretty_type(i.type_name));
    if (type.empty()) type = "-";
    const std::string name = escape_text(i.name);
    std::vector<std::string> cells{name, kind_name(i.kind), type, std::to_string(i.count), std::to_string(i.bytes)};
    if (!r.error.empty()) {
      cells.insert(cells.end(), {"?", "?", "error: " + escape_text(r.error)});
      t.add(std::move(cells));
      continue;
    }
    const KindView& kind = kind_view(i.kind);
    const auto lock = kind.lock(r.snap);
    std::string state = kind.text(r.snap, limit);
    cells.insert(cells.end(), {holder_text(lock), lock ? std::to_string(lock->recoveries) : "-",
                               state.empty() ? "-" : std::move(state)});
    t.add(std::move(cells));
    if (lock && lock->locked && !lock->holder_alive)
      notes.push_back("note: the holder of '" + name +
                      "' is dead; its next acquirer takes the lock over and is told (owner_died)\n");
  }
  t.print(out);
  for (const auto& note : notes) out << note;
  if (pool) out << pool_text(*pool);
  return out.str();
}

}  // namespace

void render_inspect(std::ostream& out, const Segment& seg, const InspectOptions& options) {
  const auto info = seg.info();
  // One object: show every element unless asked otherwise; a listing: a few.
  const std::size_t limit = options.limit.value_or(options.object ? 0 : 8);
  const auto rows = read_rows(seg, options, limit);
  // A named pool's segment: its workers and tasks too (the whole segment only).
  const std::optional<PoolSnapshot> pool = options.object ? std::nullopt : inspect_pool(seg);
  std::uint32_t attached = 0;  // live processes in its table (dead slots: `ipckit doctor`)
  for (const auto& p : seg.processes()) attached += p.alive ? 1 : 0;
  out << (options.json ? inspect_json(info, attached, rows, limit, pool)
                       : inspect_text(info, attached, rows, limit, pool));
}

std::string render_inspect(const Segment& seg, bool json) {
  std::ostringstream out;
  InspectOptions options;
  options.json = json;
  render_inspect(out, seg, options);
  return out.str();
}

}  // namespace ipckit::cli
