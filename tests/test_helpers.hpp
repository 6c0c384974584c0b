// tests/test_helpers.hpp — small checks several test files share: a peer
// process's scheduler state, an error's message, an object's raw state in
// its segment (to read or overwrite it as another process could).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/segment.hpp"
#include "multiprocess.hpp"

namespace ipckit::testing {

// The scheduler state of a process ('R', 'S', 'T', ...), 0 if it is gone.
inline char run_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 0;
}

// Whether `c` is (soon) stopped by SIGSTOP.
inline bool stopped(const Child& c) {
  return eventually([&] { return run_state(c.pid()) == 'T'; });
}

// The message of the E that `call` throws, or "(nothing thrown)".
template <class E, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const E& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// An object's state in its segment, as a State.
template <class State>
State* raw_state(const Segment& seg, const std::string& name) {
  return static_cast<State*>(const_cast<void*>(detail::SegmentAccess::object_body(seg, name)));
}

// The thread that holds a lock, from its word (0 if free).
inline std::uint32_t holder_tid(const detail::LockState& s) { return s.word.load() & detail::kLockTidMask; }

}  // namespace ipckit::testing
