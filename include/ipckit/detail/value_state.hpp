// ipckit/detail/value_state.hpp — a Value's or Array's layout in shared memory.
//
// Own lock or bound: [64: its LockState, or a BoundHeader][value]
//                    [64: its LockState, or a BoundHeader][64: count][elements].
// Raw: the value or the elements alone. The guard is part of the object's
// directory type name (see Guard below), so every opener agrees on which of
// the three layouts it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

// Checked whenever a process opens one: bump it when a field moves or changes meaning.
inline constexpr std::uint32_t kValueLayout = 1;
inline constexpr std::uint32_t kArrayLayout = 1;
inline constexpr std::size_t kValueDataOffset = sizeof(LockState);      // 64
inline constexpr std::size_t kArrayDataOffset = 2 * sizeof(LockState);  // 128

// How a Value or Array is guarded. It is part of the object's type tag: the
// directory's type name is the typeid name, prefixed "raw:" or "bound:"
// (mangled names never contain ':'), so opening an object with another
// guard fails the type check. Tools read it back with guard_of().
enum class Guard : std::uint8_t { Own, Raw, Bound };

// The prefix of each guard's type name, at its number.
inline constexpr std::string_view kGuardPrefixes[] = {"", "raw:", "bound:"};  // Own, Raw, Bound
constexpr std::string_view guard_prefix(Guard guard) noexcept {
  return kGuardPrefixes[static_cast<std::size_t>(guard)];
}
// The guard of a Value/Array from its directory type name, and that name without it.
constexpr Guard guard_of(std::string_view type_name) noexcept {
  for (const Guard g : {Guard::Raw, Guard::Bound})
    if (type_name.starts_with(guard_prefix(g))) return g;
  return Guard::Own;
}
constexpr std::string_view unguarded_type_name(std::string_view type_name) noexcept {
  return type_name.substr(guard_prefix(guard_of(type_name)).size());
}

// Where a bound object's lock is (an offset in the segment), in place of the
// own lock: the binding every process must repeat.
struct alignas(64) BoundHeader {
  std::uint64_t lock_offset;
};
static_assert(sizeof(BoundHeader) == sizeof(LockState));

}  // namespace ipckit::detail
