// tests/fuzz/exercise.hpp — what both fuzz targets do with a segment: use
// every object in it through the typed API, with short timeouts.
//
// The rules of the game: an ipckit::Error is an expected answer to a hostile
// segment; anything else is a finding — a crash or sanitizer report, another
// exception escaping (libFuzzer reports the abort of std::terminate), a call
// that does not return (libFuzzer's -timeout), or a broken promise checked
// here (`finding()` aborts with a message naming it).
//
// Nothing here blocks without a deadline: an untimed lock() on a lock word a
// fuzzer filled with a live pid (1) would wait forever by design, so every
// lock is taken with try_lock() or lock(kShort).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"

namespace ipckit::fuzz {

// A Value too large for atomic access: get()/set() take its RLock.
struct Blob {
  char bytes[100];
};

// Long enough to get past a waiter's spinning phase (~50 µs) into its futex
// sleep, short enough to keep executions fast.
inline constexpr std::chrono::microseconds kShort{100};

// Semantic checks (e.g. "release() never wraps the count") abort like a
// crash; IPCKIT_FUZZ_NO_ORACLES=1 turns them off, to look past a known one.
bool oracles_enabled() noexcept;
// Reports a broken promise and aborts (a libFuzzer "deadly signal").
[[noreturn]] void finding(const std::string& what) noexcept;

// Runs `f`, swallowing the expected ipckit::Error (and only that).
template <class F>
void expect_errors(F&& f) {
  try {
    f();
  } catch (const ipckit::Error&) {
  }
}

// A segment name unique to this process and `tag`, and its file in /dev/shm.
std::string unique_segment_name(std::string_view tag);
std::string segment_path(std::string_view name);
// Writes `data` as the whole segment file (replacing it); removed at exit.
void write_segment_file(std::string_view name, const std::uint8_t* data, std::size_t size);

// Call at the start of every input: forgets what the last one learnt.
void new_input() noexcept;
// Creates a Value, an Array, a Lock, a Semaphore and a Queue named
// `prefix`.* (errors expected). After one creation times out on the
// directory lock, the others of this input are skipped: a bounded wait
// repeated a hundred times would look like a hang.
void create_objects(Segment& seg, const std::string& prefix);
// info(), objects(), every object used through its typed API (but the one
// named `leave_alone`), new objects created, and the CLI's inspect renderer
// when it is built in.
void exercise_segment(Segment& seg, std::string_view leave_alone = {});
// One directory entry, opened as its kind says (and once as a wrong kind,
// which must throw).
void exercise_object(Segment& seg, const ObjectInfo& info, const std::vector<ObjectInfo>& all);
// The CLI's inspect code (src/cli/inspect.hpp) on this segment, text and
// JSON; the JSON must be valid (UTF-8 included). A no-op until it exists.
void exercise_inspect(const Segment& seg);

// Whether `s` is valid UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

}  // namespace ipckit::fuzz
