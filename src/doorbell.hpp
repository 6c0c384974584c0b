// doorbell.hpp — how a change of a shared word reaches a process that
// awaits it through a wait handle, not by sleeping on the futex
// (internal, not installed).
//
// A process that arms a wait handle on a word holds a datagram socket bound
// to the abstract name "ipckit/<nonce>/<offset>": `nonce` is random, per
// process and segment, published in its process-table slot (`doorbell`),
// and `offset` is the word's place in the segment. It also sets the word's
// bit in its slot's `watching` filter and kSleeperAsync in the word's
// sleepers (watchers) word. A waker that sees kSleeperAsync clears it and
// sends one datagram to every slot whose filter has the word's bit; the
// process arms again (setting the flag) before it next waits. The socket
// becoming readable is the wake-up: no thread, no futex, any event loop.
//
// Abstract names need no file (nothing is left behind by a crash), but they
// are per network namespace and anyone in it may send to them: a datagram is
// only ever a hint that the receiver checks against shared memory, and a
// process in another namespace falls back on its own periodic re-check.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ipckit/detail/label.hpp"

namespace ipckit::detail {

struct ProcessSlot;

// Where this process's doorbell for a word is: its nonce and the offset.
struct DoorbellAddress {
  std::uint64_t nonce = 0;
  std::uint64_t offset = 0;
};

// The filter bit of a word at `offset`.
[[nodiscard]] inline std::uint64_t watch_bit(std::uint64_t offset) noexcept {
  return std::uint64_t{1} << (((offset >> 2) * 0x9E37'79B9'7F4A'7C15ull) >> 58);
}

// process_table.cpp: publishes this process's interest in `word` (its
// slot's nonce, made on first use, and the word's filter bit). Null when
// the word lies in no segment this process participates in, or the
// segment's process table had no slot for it.
std::optional<DoorbellAddress> publish_watch(const void* word) noexcept;

// process_table.cpp: the process table of the segment holding `word`, and
// the word's offset there; false when this process has no listed mapping.
struct RingTargets {
  ProcessSlot* slots = nullptr;
  std::uint32_t count = 0;
  std::uint64_t offset = 0;
};
bool ring_targets(const void* word, RingTargets& out) noexcept;

// A bound doorbell socket, shared by every wait handle of this process on
// the same word (a second bind of the name would fail).
class DoorbellSocket {
 public:
  // Binds the socket, or returns the one this process already has for
  // `address`. Throws SystemError naming `who` (out of descriptors, or the
  // name squatted by another process).
  static std::shared_ptr<DoorbellSocket> get(const DoorbellAddress& address, const Label& who);
  ~DoorbellSocket();
  DoorbellSocket(const DoorbellSocket&) = delete;
  DoorbellSocket& operator=(const DoorbellSocket&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const DoorbellAddress& address() const noexcept { return address_; }
  // Reads every datagram queued: the socket is not readable until the next ring.
  void drain() noexcept;
  // In a forked child (registry locked): closes every socket inherited.
  static void close_in_child() noexcept;

 private:
  DoorbellSocket(int fd, const DoorbellAddress& address) : fd_(fd), address_(address) {}
  int fd_;
  DoorbellAddress address_;
};

}  // namespace ipckit::detail
