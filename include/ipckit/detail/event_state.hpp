// ipckit/detail/event_state.hpp — the shared-memory layout of Event.
//
// `flag` is the event; `seq` is the futex waiters sleep on, bumped by every
// set(), so that a waiter never misses a set() that a clear() undid before
// it looked. `sleepers` is the audited sleeper count (detail/futex.hpp).
#pragma once

#include <atomic>
#include <cstdint>

namespace ipckit::detail {

// Checked whenever a process opens an event: change it with the layout.
inline constexpr std::uint32_t kEventLayout = 1;

struct alignas(64) EventState {
  std::atomic<std::uint32_t> flag{0};
  std::atomic<std::uint32_t> seq{0};  // futex word: bumped by set()
  std::atomic<std::uint32_t> sleepers{0};
};

}  // namespace ipckit::detail
