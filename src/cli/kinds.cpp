// The table of object kinds (kinds.hpp).
#include "kinds.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <variant>

#include "tables.hpp"

namespace ipckit::cli {
namespace {

// The lock a kind shows as its own: none unless one of these says so.
template <class S>
std::optional<LockStats> own_lock(const S&) {
  return std::nullopt;
}
std::optional<LockStats> own_lock(const ValueStats& s) { return s.lock; }
std::optional<LockStats> own_lock(const LockStats& s) { return s; }
std::optional<LockStats> own_lock(const ConditionStats& s) { return s.lock; }
std::optional<LockStats> own_lock(const BarrierStats& s) { return s.lock; }
std::optional<LockStats> own_lock(const PriorityQueueStats& s) { return s.lock; }

// A row for a kind whose snapshot is an S, rendered by Text and Write.
// (A snapshot holding another alternative, which the library does not
// return for this kind, shows nothing.)
template <class S, std::string (*Text)(const S&, const ObjectInfo&, std::size_t),
          void (*Write)(Json&, const S&, const ObjectInfo&, std::size_t)>
constexpr KindView row(ObjectKind kind) {
  return KindView{kind,
                  [](const ObjectSnapshot& snap) -> std::optional<LockStats> {
                    const S* s = std::get_if<S>(&snap.stats);
                    return s != nullptr ? own_lock(*s) : std::nullopt;
                  },
                  [](const ObjectSnapshot& snap, std::size_t limit) -> std::string {
                    const S* s = std::get_if<S>(&snap.stats);
                    return s != nullptr ? Text(*s, snap.info, limit) : std::string();
                  },
                  [](Json& object, const ObjectSnapshot& snap, std::size_t limit) {
                    if (const S* s = std::get_if<S>(&snap.stats)) Write(object, *s, snap.info, limit);
                  }};
}

template <class S>
constexpr KindView state_row(ObjectKind kind) {
  return row<S, state_text, state_json>(kind);
}

constexpr KindView kKinds[] = {
    row<ValueStats, value_text, value_json>(ObjectKind::Value),
    row<ValueStats, elements_text, elements_json>(ObjectKind::Array),
    row<LockStats, lock_only_text, lock_only_json>(ObjectKind::Lock),
    row<LockStats, lock_only_text, lock_only_json>(ObjectKind::RLock),
    state_row<ConditionStats>(ObjectKind::Condition),
    state_row<SemaphoreStats>(ObjectKind::Semaphore),
    state_row<SemaphoreStats>(ObjectKind::BoundedSemaphore),
    state_row<EventStats>(ObjectKind::Event),
    state_row<BarrierStats>(ObjectKind::Barrier),
    state_row<QueueStats>(ObjectKind::Queue),
    state_row<QueueStats>(ObjectKind::JoinableQueue),
    state_row<PriorityQueueStats>(ObjectKind::PriorityQueue),
    state_row<PriorityQueueStats>(ObjectKind::LifoQueue),
    state_row<PriorityQueueStats>(ObjectKind::JoinablePriorityQueue),
};

constexpr KindView kUnknownKind{
    ObjectKind{}, [](const ObjectSnapshot&) -> std::optional<LockStats> { return std::nullopt; },
    [](const ObjectSnapshot&, std::size_t) { return std::string(); }, [](Json&, const ObjectSnapshot&, std::size_t) {}};

}  // namespace

const KindView& kind_view(ObjectKind kind) {
  const auto* row =
      std::find_if(std::begin(kKinds), std::end(kKinds), [&](const KindView& k) { return k.kind == kind; });
  return row != std::end(kKinds) ? *row : kUnknownKind;
}

std::string kind_name(ObjectKind kind) {
  std::string s = to_string(kind);
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace ipckit::cli
