// The CLI's text output of snapshots (tables.hpp).
#include "tables.hpp"

#include <cstdint>
#include <ctime>

#include "text.hpp"
#include "values.hpp"

namespace ipckit::cli {
namespace {

std::string n(std::uint64_t v) { return std::to_string(v); }

// What the library found impossible in the state, at the end of its cell.
std::string with_corrupt(std::string text, const std::string& corrupt) {
  if (!corrupt.empty()) text += ", CORRUPT: " + escape_text(corrupt);
  return text;
}

std::string sleeping(std::uint32_t consumers, std::uint32_t producers) {
  return n(consumers) + " consumer(s) and " + n(producers) + " producer(s) sleeping";
}

// Who holds tasks they got and have not marked done: " (held: 2 by pid 7, 1 by pid 9 (dead))".
std::string tasks_text(const TaskStats& t) {
  std::string text = ", " + n(t.unfinished) + " unfinished, " + n(t.abandoned) + " abandoned";
  std::string held;
  for (const auto& h : t.holders)
    held += (held.empty() ? "" : ", ") + n(h.tasks) + " by pid " + std::to_string(h.pid) + (h.alive ? "" : " (dead)");
  if (!held.empty()) text += " (held: " + held + ")";
  return text;
}

}  // namespace

std::string creator_text(const SegmentInfo& info) {
  if (info.creator_pid <= 0) return "?";
  return std::to_string(info.creator_pid) + (info.creator_alive ? " (alive)" : " (dead)");
}

std::string age_text(const SegmentInfo& info) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  return info.created_unix > 0 ? human_age(now - info.created_unix) : "?";
}

std::string holder_text(const std::optional<LockStats>& lock) {
  if (!lock) return "-";
  if (!lock->locked) return "free";
  if (lock->holder_pid == 0) return "tid " + n(lock->holder_tid) + " (dead)";
  return "pid " + std::to_string(lock->holder_pid) + (lock->holder_alive ? " (alive)" : " (dead)");
}

std::string value_text(const ValueStats& s, const ObjectInfo&, std::size_t) { return decode_value(s).text; }

std::string elements_text(const ValueStats& s, const ObjectInfo&, std::size_t limit) {
  return decode_elements(s, limit).text;
}

std::string lock_only_text(const LockStats&, const ObjectInfo&, std::size_t) { return {}; }

std::string state_text(const SemaphoreStats& s, const ObjectInfo&, std::size_t) {
  std::string text = n(s.value) + "/" + n(s.initial) + " free, " + n(s.sleepers) + " sleeping";
  if (s.tracked) {
    text += ", tracked, " + n(s.reclaimed) + " reclaimed";
    std::string held;
    for (const auto& h : s.holders)
      held += (held.empty() ? "" : ", ") + n(h.units) + " by " +
              (h.alive ? "pid " + std::to_string(h.pid) : "tid " + n(h.tid) + " (dead)");
    if (!held.empty()) text += " (held: " + held + ")";
  }
  return with_corrupt(std::move(text), s.corrupt);
}

std::string state_text(const EventStats& s, const ObjectInfo&, std::size_t) {
  return std::string(s.set ? "set" : "clear") + ", " + n(s.sleepers) + " sleeping";
}

std::string state_text(const ConditionStats& s, const ObjectInfo& info, std::size_t) {
  std::string text = n(s.sleepers) + " sleeping, bound to " +
                     (info.count == 0 ? std::string("its own lock") : "the lock at offset " + n(info.count));
  if (s.waiters != 0) text += ", " + n(s.waiters) + " waiting";
  if (s.notified != 0) text += ", " + n(s.notified) + " notified";
  return with_corrupt(std::move(text), s.corrupt);
}

std::string state_text(const BarrierStats& s, const ObjectInfo&, std::size_t) {
  std::string text = n(s.waiting) + "/" + n(s.parties) + " arrived, round " + n(s.round);
  if (s.broken) text += ", BROKEN (" + escape_text(s.broken_reason) + ")";
  return with_corrupt(std::move(text), s.corrupt);
}

std::string state_text(const QueueStats& s, const ObjectInfo&, std::size_t) {
  std::string text = n(s.items) + " items, " + n(s.bytes_used) + "/" + n(s.capacity) + " bytes, " +
                     sleeping(s.sleeping_consumers, s.sleeping_producers) + (s.closed ? ", CLOSED" : "");
  if (s.tasks) text += tasks_text(*s.tasks);
  return with_corrupt(std::move(text), s.corrupt);
}

std::string state_text(const PriorityQueueStats& s, const ObjectInfo&, std::size_t) {
  std::string text = n(s.items) + " items in " + n(s.slots) + " slots of " + n(s.max_message) + " bytes, " +
                     (s.lowest_priority ? "lowest priority " + std::to_string(*s.lowest_priority) + ", " : "") +
                     sleeping(s.sleeping_consumers, s.sleeping_producers) + (s.closed ? ", CLOSED" : "");
  if (s.tasks) text += tasks_text(*s.tasks);
  return with_corrupt(std::move(text), s.corrupt);
}

}  // namespace ipckit::cli
