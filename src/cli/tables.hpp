// src/cli/tables.hpp — the CLI's text output of library snapshots
// (ipckit/inspect.hpp): one cell per object, in words.
//
// Every string read from a segment is escaped (text.hpp) before it is put in
// a cell, so that one object is always one line.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "ipckit/inspect.hpp"

namespace ipckit::cli {

// A segment's creator ("42 (alive)", "?") and age ("3m12s", "?").
std::string creator_text(const SegmentInfo& info);
std::string age_text(const SegmentInfo& info);

// "free", "pid 42 (alive)", "tid 7 (dead)"; "-" when the object has no lock.
std::string holder_text(const std::optional<LockStats>& lock);

// What each kind shows in the VALUE / STATE column, escaped ("" shows as
// "-"). Every one takes the object's entry and the element limit, used or
// not, so that the table of kinds (kinds.cpp) holds them all alike.
std::string value_text(const ValueStats& s, const ObjectInfo& info, std::size_t limit);
std::string elements_text(const ValueStats& s, const ObjectInfo& info, std::size_t limit);
std::string lock_only_text(const LockStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const SemaphoreStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const EventStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const ConditionStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const BarrierStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const QueueStats& s, const ObjectInfo& info, std::size_t limit);
std::string state_text(const PriorityQueueStats& s, const ObjectInfo& info, std::size_t limit);

}  // namespace ipckit::cli
