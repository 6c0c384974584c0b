// tests/fuzz/live_script.hpp — the language of fuzz_live_corruption's inputs,
// shared with the seed generator (make_corpus.cpp).
//
// An input is a script of steps, each starting with one op byte (taken
// modulo kOpCount):
//
//   RawWrite     u16 offset (mod the segment size), u8 length (mod 16, +1), bytes
//   ObjectWrite  u8 object (mod the object count), u16 offset (mod its size), u8 length, bytes
//   ObjectPoke   u8 object, u16 offset (mod its size, 4-aligned), u8 value index, u8 width (odd: 8, even: 4)
//   HeaderPoke   u8 word (mod 64: byte offset word*4 of the first 256), u8 value index, u8 width
//   an action    FirstAction + Action: one call on an open handle (short timeouts)
//
// Missing bytes at the end read as zero. Writes go through a second mapping
// of the segment file, as a stray write of another process would; the
// handles were opened before, so fields change under them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ipckit::fuzz::live {

inline constexpr std::size_t kSegmentSize = 64 * 1024;
inline constexpr std::uint32_t kMaxObjects = 32;
inline constexpr std::size_t kMaxSteps = 512;

enum Op : std::uint8_t { RawWrite = 0, ObjectWrite, ObjectPoke, HeaderPoke, FirstAction };

// The objects the target creates, in creation order (the index an
// ObjectWrite/ObjectPoke names).
enum Object : std::uint8_t {
  Canary = 0,  // a Value nothing but a direct write may change (checked after every step)
  Counter,
  BlobValue,
  Ints,
  TheLock,
  TheRLock,
  Cond,
  BoundCond,
  Sem,
  BoundedSem,
  TrackedSem,
  TheEvent,
  Barrier1,
  Barrier2,
  TheQueue,
  Bytes,
  Joinable,
  Priority,
  kObjectCount
};

enum Action : std::uint8_t {
  CounterRW = 0,
  BlobRW,
  ArrayRW,
  LockTake,  // try_lock, or lock(short); kept held
  LockRelease,
  RLockTake,  // one more level, kept held
  RLockRelease,
  CondWait,  // own-lock condition: try_lock, wait_for(0 / short), unlock
  CondNotify,
  BoundCondWait,
  SemTake,  // kept
  SemRelease,
  BoundedCycle,
  TrackedTake,  // kept
  TrackedRelease,
  EventCycle,
  BarrierSolo,  // 1 party
  BarrierPair,  // 2 parties: times out, breaks; reset
  QueuePut,
  QueuePutMany,
  QueueGet,
  QueueGetMany,
  BytesCycle,
  JoinableCycle,
  PriorityCycle,
  CloseQueues,
  Reopen,         // Segment::open again and use everything through it
  CreateObjects,  // new objects in the live segment
  Inspect,
  kActionCount
};

inline constexpr std::uint8_t kOpCount = static_cast<std::uint8_t>(int{FirstAction} + int{kActionCount});

// Values a poke writes (the last ones are filled in at run time).
inline constexpr std::uint64_t kPokeValues[] = {
    0,
    1,
    2,
    7,
    8,
    63,
    64,
    0x7f,
    0xff,
    0x100,
    0x1000,
    0xffff,
    kSegmentSize,
    kSegmentSize + 1,
    kSegmentSize - 64,
    kSegmentSize * 2,
    0x7fffffff,
    0x80000000,
    0x80000001,
    0xfffffffe,
    0xffffffff,
    0x100000000ULL,
    std::uint64_t{1} << 27,
    std::uint64_t{1} << 40,
    std::uint64_t{1} << 62,
    0x7fffffffffffffffULL,
    0xffffffffffffffffULL,
    0x52454459 /* "REDY" */,
    0x31474553544B5049ULL /* magic */,
};
inline constexpr std::size_t kPokeValueCount = sizeof kPokeValues / sizeof kPokeValues[0];
// Index kPokeValueCount: this thread's id (a lock word "held by me").
inline constexpr std::size_t kPokeOwnTid = kPokeValueCount;
inline constexpr std::size_t kPokeChoices = kPokeValueCount + 1;

}  // namespace ipckit::fuzz::live
