// ipckit/detail/holders.hpp — who holds what, so a dead holder's share can be
// given back: a tracked semaphore's units, a joinable queue's unfinished tasks.
//
// A slot is claimed by CAS on its tid (with a marker until its start time is
// written); `units` is written only by the holding thread while it lives and
// by the one reclaimer that frees the slot after it died.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/thread_id.hpp"

namespace ipckit::detail {

inline constexpr std::uint32_t kHolderClaiming = 0x8000'0000u;  // tid | this: slot being filled

struct HolderSlot {
  std::atomic<std::uint32_t> tid{0};  // 0: free
  std::uint32_t units = 0;
  std::uint64_t start_ticks = 0;
};

// The caller's slot, claimed (with 0 units) if it has none; -1 when all are taken.
int holders_claim(HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept;
// Adds `units` to the caller's slot, claiming one; false when all are taken.
bool holders_add(HolderSlot* slots, std::size_t n, const ThreadIdentity& me, std::uint32_t units) noexcept;
// The units the caller holds.
std::uint32_t holders_count(const HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept;
// Takes `units` from the caller's slot; false (and nothing taken) if it holds fewer.
bool holders_remove(HolderSlot* slots, std::size_t n, const ThreadIdentity& me, std::uint32_t units) noexcept;
// Frees the slots of dead holders and returns the units they held; slot i is
// left alone while busy[i] != 0 (busy may be null).
std::uint64_t holders_reclaim(HolderSlot* slots, std::size_t n, const std::uint64_t* busy = nullptr) noexcept;

}  // namespace ipckit::detail
