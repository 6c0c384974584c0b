// tests/queue_items.hpp — item types shared by the queue tests: ones that
// fail to decode, stall half-way (so a test can kill a process inside put or
// get), or carry a producer and sequence number (and a check of themselves).
#pragma once

#include <unistd.h>

#include <cereal/types/string.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

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

// The item of the crash runs: its size varies with `seq` ((seq % 61) *
// pad_unit bytes of pad, so records wrap a ring's end at every offset) and it
// carries a check of its contents, so a torn or stale record shows up as
// garbage.
struct Stamped {
  std::uint32_t producer = 0;
  std::uint32_t seq = 0;
  std::string pad;
  std::uint64_t check = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(producer, seq, pad, check);
  }
};

inline std::uint64_t stamp_of(std::uint32_t producer, std::uint32_t seq) {
  std::uint64_t x = ((std::uint64_t{producer} << 32) | seq) * 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29) ^ 0x5bd1e995u;
}
inline std::string pad_of(std::uint32_t seq, std::size_t pad_unit) {
  return std::string((seq % 61) * pad_unit, static_cast<char>('a' + seq % 26));
}
inline Stamped make_stamped(std::uint32_t producer, std::uint32_t seq, std::size_t pad_unit) {
  return {producer, seq, pad_of(seq, pad_unit), stamp_of(producer, seq)};
}
// Whether `s` is an item make_stamped(p, seq, pad_unit) made, p < producers.
inline bool intact(const Stamped& s, std::uint32_t producers, std::size_t pad_unit) {
  return s.producer < producers && s.check == stamp_of(s.producer, s.seq) && s.pad == pad_of(s.seq, pad_unit);
}

}  // namespace ipckit::testing
