// The CLI's JSON writer (json.hpp).
#include "json.hpp"

#include <cstdint>
#include <ctime>
#include <utility>

#include "text.hpp"
#include "values.hpp"

namespace ipckit::cli {
namespace {

std::int64_t now_unix() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The state object, with what the library found impossible in it.
void put_state(Json& o, Json state, const std::string& corrupt) {
  if (!corrupt.empty()) state["corrupt"] = corrupt;
  o["state"] = std::move(state);
}

void put_decoded(Json& o, Decoded d, const char* key, bool list) {
  if (!d.known) {
    if (!d.raw_hex.empty()) o["raw_hex"] = std::move(d.raw_hex);
    return;
  }
  o[key] = std::move(d.json);
  if (list) o["truncated"] = d.truncated;
}

Json tasks_json(Json state, const TaskStats& t) {
  state["unfinished"] = t.unfinished;
  state["abandoned"] = t.abandoned;
  Json held = Json::array();
  for (const auto& h : t.holders) held.push_back(Json{{"pid", h.pid}, {"tasks", h.tasks}, {"alive", h.alive}});
  state["held"] = std::move(held);
  state["sleeping_joiners"] = t.joiners;
  return state;
}

// A queue's state: what both engines report alike, then `own` (what only its
// engine has), then a joinable queue's tasks.
template <class S>
void queue_state(Json& o, const S& s, const Json& own) {
  Json state{{"items", s.items},
             {"max_message", s.max_message},
             {"closed", s.closed},
             {"sleeping_consumers", s.sleeping_consumers},
             {"sleeping_producers", s.sleeping_producers}};
  state.update(own);
  if (s.tasks) state = tasks_json(std::move(state), *s.tasks);
  put_state(o, std::move(state), s.corrupt);
}

}  // namespace

std::string dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n"; }

void add_segment_json(Json& j, const SegmentInfo& info) {
  j.update(Json{{"name", info.name},
                {"size", info.size},
                {"used", info.used},
                {"objects", info.objects},
                {"max_objects", info.max_objects}});
  // Who made it, when, and who may open it.
  j.update(Json{{"creator_pid", info.creator_pid},
                {"creator_alive", info.creator_alive},
                {"created_unix", info.created_unix},
                {"age_seconds", info.created_unix > 0 ? Json(now_unix() - info.created_unix) : Json(nullptr)},
                {"mode", octal_mode(info.mode)},
                {"owner_uid", static_cast<std::uint64_t>(info.owner_uid)}});
  j.update(Json{{"max_processes", info.max_processes}, {"deadlock_detection", info.deadlock_detection}});
}

Json lock_json(const LockStats& s) {
  Json j{{"held", s.locked}};
  if (s.locked)
    j.update(
        Json{{"pid", s.holder_pid}, {"tid", s.holder_tid}, {"alive", s.holder_alive}, {"owner_died", s.owner_died}});
  j.update(Json{{"waiters", s.waiters}, {"recoveries", s.recoveries}, {"contended", s.contended}});
  return j;
}

void value_json(Json& o, const ValueStats& s, const ObjectInfo&, std::size_t) {
  put_decoded(o, decode_value(s), "value", false);
}

void elements_json(Json& o, const ValueStats& s, const ObjectInfo&, std::size_t limit) {
  put_decoded(o, decode_elements(s, limit), "values", true);
}

void lock_only_json(Json&, const LockStats&, const ObjectInfo&, std::size_t) {}

void state_json(Json& o, const SemaphoreStats& s, const ObjectInfo&, std::size_t) {
  Json holders = Json::array();
  for (const auto& h : s.holders)
    holders.push_back(Json{{"pid", h.pid}, {"tid", h.tid}, {"units", h.units}, {"alive", h.alive}});
  put_state(o,
            Json{{"value", s.value},
                 {"initial", s.initial},
                 {"sleepers", s.sleepers},
                 {"tracked", s.tracked},
                 {"reclaimed", s.reclaimed},
                 {"bounded", s.bounded},
                 {"holders", std::move(holders)}},
            s.corrupt);
}

void state_json(Json& o, const EventStats& s, const ObjectInfo&, std::size_t) {
  put_state(o, Json{{"set", s.set}, {"sleepers", s.sleepers}}, {});
}

void state_json(Json& o, const ConditionStats& s, const ObjectInfo& info, std::size_t) {
  put_state(o,
            Json{{"sleepers", s.sleepers},
                 {"bound_lock_offset", info.count},
                 {"waiters", s.waiters},
                 {"notified", s.notified}},
            s.corrupt);
}

void state_json(Json& o, const BarrierStats& s, const ObjectInfo&, std::size_t) {
  put_state(o,
            Json{{"arrived", s.waiting},
                 {"parties", s.parties},
                 {"round", s.round},
                 {"broken", s.broken},
                 {"broken_reason", s.broken ? Json(s.broken_reason) : Json(nullptr)},
                 {"sleepers", s.sleepers}},
            s.corrupt);
}

void state_json(Json& o, const QueueStats& s, const ObjectInfo&, std::size_t) {
  queue_state(o, s,
              Json{{"bytes", s.bytes_used},
                   {"capacity", s.capacity},
                   {"max_items", s.max_items},
                   {"producers_lock", lock_json(s.producers_lock)},
                   {"consumers_lock", lock_json(s.consumers_lock)}});
}

void state_json(Json& o, const PriorityQueueStats& s, const ObjectInfo&, std::size_t) {
  queue_state(o, s,
              Json{{"slots", s.slots},
                   {"lowest_priority", s.lowest_priority ? Json(*s.lowest_priority) : Json(nullptr)},
                   {"rebuilds", s.rebuilds}});
}

}  // namespace ipckit::cli
