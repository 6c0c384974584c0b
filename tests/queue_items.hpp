// tests/queue_items.hpp — item types shared by the queue tests: ones that
// fail to decode, stall half-way (so a test can kill a process inside put or
// get), or carry a producer and sequence number.
#pragma once

#include <unistd.h>

#include <cstdint>

namespace ipckit::testing {

// Writes `extra` only when `complete`, but always reads it back: an
// incomplete one is put fine and then does not decode.
struct Fragile {
  std::int32_t value = 0;
  bool complete = true;
  std::int32_t extra = 0;
  template <class Archive>
  void save(Archive& ar) const {
    ar(value, complete);
    if (complete) ar(extra);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(value, complete, extra);
  }
};

// An item whose encoding or decoding can be made to stop for good, so that a
// test can kill a producer inside put() (encoding) or a consumer inside get()
// (decoding: the consumers' lock held, the record not yet freed). A process
// that sets `g_stall_fd` posts a byte to it and pauses for good when it
// encodes a value of kStallOnSave or decodes a value of kStallOnLoad; others
// are not affected.
inline int g_stall_fd = -1;
inline constexpr std::int32_t kStallOnSave = -1, kStallOnLoad = -2;
[[noreturn]] inline void stall_here() {
  (void)!::write(g_stall_fd, "s", 1);
  for (;;) ::pause();
}
struct Stalling {
  std::int32_t value = 0;
  template <class Archive>
  void save(Archive& ar) const {
    if (value == kStallOnSave && g_stall_fd >= 0) stall_here();
    ar(value);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(value);
    if (value == kStallOnLoad && g_stall_fd >= 0) stall_here();
  }
};

// The small item of the MPMC runs.
struct Tagged {
  std::uint32_t producer = 0;
  std::uint32_t seq = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(producer, seq);
  }
};

}  // namespace ipckit::testing
