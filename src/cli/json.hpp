// src/cli/json.hpp — the CLI's JSON writer: library snapshots
// (ipckit/inspect.hpp) and segment summaries as nlohmann JSON.
//
// dump() uses error_handler_t::replace: nlohmann validates UTF-8 strictly
// (overlong forms, surrogates and 0xF5-0xFF are errors) and puts U+FFFD in
// place of invalid bytes, so the output is always valid JSON in valid UTF-8
// whatever bytes a segment holds.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "ipckit/inspect.hpp"

namespace ipckit::cli {

using Json = nlohmann::ordered_json;  // keys in the order written

// Indented by two, one trailing newline.
std::string dump(const Json& j);

void add_segment_json(Json& j, const SegmentInfo& info);
Json lock_json(const LockStats& s);

// What each kind adds to its object's JSON ("value", "values" and
// "truncated", "raw_hex", or "state"). Every one takes the object's entry and
// the element limit, used or not, so that the table of kinds (kinds.cpp)
// holds them all alike.
void value_json(Json& o, const ValueStats& s, const ObjectInfo& info, std::size_t limit);
void elements_json(Json& o, const ValueStats& s, const ObjectInfo& info, std::size_t limit);
void lock_only_json(Json& o, const LockStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const SemaphoreStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const EventStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const ConditionStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const BarrierStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const QueueStats& s, const ObjectInfo& info, std::size_t limit);
void state_json(Json& o, const PriorityQueueStats& s, const ObjectInfo& info, std::size_t limit);

}  // namespace ipckit::cli
