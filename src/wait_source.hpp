// wait_source.hpp — making wait handles (ipckit/wait_handle.hpp) for the
// objects' words (internal, not installed).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ipckit/detail/label.hpp"
#include "ipckit/wait_handle.hpp"

namespace ipckit::detail {

// How an armer makes sure the waker looks at the watchers word.
enum class ArmKind : std::uint8_t {
  Sleepers,  // `watchers` is the word's sleepers word: every waker checks it
  Lock,      // a Lock's word: also set kLockWaiters, so that the unlock takes the slow path
};

// A handle on a shared word that wakers bump: `ready()` says whether the
// awaited condition holds; `keepalive` keeps the segment mapped; `what`
// prefixes the object's label ("items of ").
// Throws InvalidArgument when this process has no slot in the segment's
// process table, SystemError when the socket cannot be made.
WaitHandle shared_word_handle(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& watchers, ArmKind kind,
                              std::function<bool()> ready, std::shared_ptr<const void> keepalive, const Label& object,
                              const std::string& what);

}  // namespace ipckit::detail
