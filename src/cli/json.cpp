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

}  // namespace

std::string dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n"; }

void add_segment_json(Json& j, const SegmentInfo& info) {
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

Json lock_json(const LockStats& s) {
  Json j{{"held", s.locked}};
  if (s.locked) {
    j["pid"] = s.holder_pid;
    j["tid"] = s.holder_tid;
    j["alive"] = s.holder_alive;
    j["owner_died"] = s.owner_died;
  }
  j["waiters"] = s.waiters;
  j["recoveries"] = s.recoveries;
  j["contended"] = s.contended;
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
  Json state{{"items", s.items},
             {"bytes", s.bytes_used},
             {"capacity", s.capacity},
             {"sleeping_consumers", s.sleeping_consumers},
             {"sleeping_producers", s.sleeping_producers},
             {"closed", s.closed},
             {"max_message", s.max_message},
             {"max_items", s.max_items}};
  if (s.tasks) state = tasks_json(std::move(state), *s.tasks);
  state["producers_lock"] = lock_json(s.producers_lock);
  state["consumers_lock"] = lock_json(s.consumers_lock);
  put_state(o, std::move(state), s.corrupt);
}

void state_json(Json& o, const PriorityQueueStats& s, const ObjectInfo&, std::size_t) {
  Json state{{"items", s.items},
             {"slots", s.slots},
             {"max_message", s.max_message},
             {"lowest_priority", s.lowest_priority ? Json(*s.lowest_priority) : Json(nullptr)},
             {"sleeping_consumers", s.sleeping_consumers},
             {"sleeping_producers", s.sleeping_producers},
             {"closed", s.closed},
             {"rebuilds", s.rebuilds}};
  if (s.tasks) state = tasks_json(std::move(state), *s.tasks);
  put_state(o, std::move(state), s.corrupt);
}

}  // namespace ipckit::cli
