// ipckit/wait_handle.hpp — a file descriptor that becomes readable when an
// ipckit object may be ready, for any event loop (epoll, poll, Asio, libuv).
//
//   auto h = jobs.wait_handle();          // items (or closed); put_wait_handle(): room
//   epoll_ctl(ep, EPOLL_CTL_ADD, h.fd(), &ev);   // EPOLLIN, level-triggered
//   for (;;) {
//     while (auto job = jobs.try_get()) handle(*job);
//     if (!h.arm()) epoll_wait(ep, ..., 1000);  // arm() true: it is ready already, try again
//   }
//
// The rule: arm(), then try the operation (or trust arm()'s answer), then
// wait for fd() to be readable. arm() empties the descriptor and registers
// this process's interest; any change of the object after it (an item put,
// the queue closed, the event set, a unit released, the lock unlocked, the
// future done) makes fd() readable, and it stays readable until the next
// arm(). So a change between a failed try and the wait is never lost, and
// readable means "try again", never "it is yours": another consumer may
// win the item. Nothing is kept per waiter in shared memory beyond a bit
// in this process's table slot, and no thread runs: a process killed while
// armed costs the others one failed send at most. Wait with a timeout (a
// second or less) and try again when it passes, as ipckit's own blocking
// waits re-check every second: a waker killed between its change and its
// ring rings nobody, and a lock holder's death rings nobody either.
//
// Made by Queue/ByteQueue/PriorityQueue::wait_handle() and put_wait_handle(),
// Event, Semaphore, Lock and RLock ::wait_handle(), and pool futures'
// wait_handle(). The handles of one object's word in one process share one
// descriptor (two epoll registrations of it fail with EEXIST): make one per
// process and object and direction. A handle belongs to the process that
// made it (a forked child makes its own). A wake from another network
// namespace (a container sharing /dev/shm) does not arrive: re-check
// periodically there (the Asio operations do, every 25 ms).
#pragma once

#include <memory>
#include <string>

namespace ipckit {

namespace detail {
// What a handle waits on: a doorbell socket, or an eventfd for a future.
class WaitSource {
 public:
  virtual ~WaitSource() = default;
  [[nodiscard]] virtual int fd() const noexcept = 0;
  virtual bool arm() = 0;
  [[nodiscard]] virtual bool ready() const = 0;
  [[nodiscard]] virtual const std::string& label() const noexcept = 0;
};
}  // namespace detail

class WaitHandle {
 public:
  WaitHandle() = default;
  explicit WaitHandle(std::shared_ptr<detail::WaitSource> source) : src_(std::move(source)) {}

  // The descriptor to poll for readability (EPOLLIN / POLLIN). -1 for an empty handle.
  [[nodiscard]] int fd() const noexcept { return src_ ? src_->fd() : -1; }
  // Empties the descriptor and registers interest: any later change makes
  // it readable. Returns whether the object looks ready already (then the
  // descriptor may not become readable: try the operation instead of waiting).
  bool arm() { return src_ && src_->arm(); }
  // Whether the awaited condition looks true now: a hint, the operation decides.
  [[nodiscard]] bool ready() const { return src_ && src_->ready(); }
  // What it waits for: "items of queue 'jobs' in segment 'demo'".
  [[nodiscard]] const std::string& label() const noexcept;
  [[nodiscard]] explicit operator bool() const noexcept { return src_ != nullptr; }

 private:
  std::shared_ptr<detail::WaitSource> src_;
};

}  // namespace ipckit
