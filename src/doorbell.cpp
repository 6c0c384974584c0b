// Doorbells: the wake-up of wait handles (see doorbell.hpp).
#include "doorbell.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

#include "ipckit/detail/futex.hpp"
#include "ipckit/error.hpp"
#include "process_table_layout.hpp"

namespace ipckit::detail {
namespace {

struct DoorbellName {
  sockaddr_un addr{};
  socklen_t len = 0;
};

DoorbellName name_of(std::uint64_t nonce, std::uint64_t offset) noexcept {
  DoorbellName n;
  n.addr.sun_family = AF_UNIX;
  // Abstract: sun_path[0] stays 0 and the name is not NUL-terminated.
  const int written = std::snprintf(n.addr.sun_path + 1, sizeof n.addr.sun_path - 1, "ipckit/%016llx/%llx",
                                    static_cast<unsigned long long>(nonce), static_cast<unsigned long long>(offset));
  n.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + static_cast<std::size_t>(written));
  return n;
}

// The socket this thread sends rings from (unbound). Per thread because it
// is replaced when full: an AF_UNIX datagram stays charged to its sender's
// buffer until the receiver reads it, so a few hundred doorbells rung and
// not yet emptied fill the buffer, and its EAGAIN must not be mistaken for
// a full receiver (which is readable already).
class Sender {
 public:
  Sender() = default;
  ~Sender() { close(); }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;
  // -1 when out of descriptors: the receivers' periodic re-check covers it.
  int fd() noexcept {
    if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return fd_;
  }
  // A fresh socket; the datagrams queued from the old one are still delivered.
  int renew() noexcept {
    close();
    return fd();
  }

 private:
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};
thread_local Sender t_sender;

// Sends one ring; whether the receiver has one queued now (a receiver whose
// queue is full is readable already).
bool send_ring(const DoorbellName& to, std::uint64_t what) noexcept {
  int fd = t_sender.fd();
  if (fd < 0) return true;  // out of descriptors: the receivers' periodic re-check covers it
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::sendto(fd, &what, sizeof what, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.addr),
                 to.len) >= 0)
      return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    // This socket's buffer, or the receiver's queue, is full: a fresh
    // socket tells the two apart.
    fd = t_sender.renew();
    if (fd < 0) return true;
  }
  return true;  // the receiver's queue is full: it is readable
}

// Whether the process that owns `slot` is gone (its pid no longer exists).
bool owner_gone(const ProcessSlot& slot) noexcept {
  const auto pid = static_cast<pid_t>(slot.owner.load(std::memory_order_relaxed) & kSlotPidMask);
  return pid == 0 || (::kill(pid, 0) == -1 && errno == ESRCH);
}

// Rings every process whose filter has the word's bit.
void ring_all(const RingTargets& t) noexcept {
  const std::uint64_t bit = watch_bit(t.offset);
  for (std::uint32_t i = 0; i < t.count; ++i) {
    ProcessSlot& slot = t.slots[i];
    std::uint64_t nonce = slot.doorbell.load(std::memory_order_acquire);
    if (nonce == 0 || (slot.watching.load(std::memory_order_acquire) & bit) == 0) continue;
    if (send_ring(name_of(nonce, t.offset), t.offset)) continue;
    // No socket by that name: this process does not await this word (any
    // more), or it died. A dead one's doorbell is taken down for good, so
    // that it costs later wakers nothing.
    if (owner_gone(slot)) slot.doorbell.compare_exchange_strong(nonce, 0, std::memory_order_acq_rel);
  }
}

}  // namespace

void ring_doorbells(const std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& watchers) noexcept {
  // One-shot, as EPOLLONESHOT: the flag is cleared first, then every
  // process whose filter has the word's bit is rung. An armer that set the
  // flag before the clear is rung below (its filter bit was published
  // before its flag); one that sets it after the clear looks at the word
  // after this change, so it needs no ring. Until a rung process arms
  // again, changes cost its producers nothing: a busy consumer that keeps
  // finding items never re-arms.
  // A waker that cannot ring (the word in no listed mapping of this
  // process) leaves the flag to one that can.
  RingTargets t;
  if (!ring_targets(&word, t)) return;
  if ((watchers.fetch_and(~kSleeperAsync, std::memory_order_seq_cst) & kSleeperAsync) == 0) return;
  ring_all(t);
}

namespace {

std::mutex g_sockets_mu;
using SocketMap = std::map<std::pair<std::uint64_t, std::uint64_t>, std::weak_ptr<DoorbellSocket>>;
// Keyed by (nonce, offset); weak: the socket closes with its last handle.
SocketMap& sockets() {
  static auto* m = new SocketMap;  // never destroyed: handles may outlive static destruction
  return *m;
}

}  // namespace

// A forked child must not keep its parent's doorbells bound: the parent
// could not bind the name again once it dropped its own handle, and rings
// meant for the parent could be read by the child.
void DoorbellSocket::close_in_child() noexcept {
  for (auto& [key, weak] : sockets())
    if (auto s = weak.lock()) {
      ::close(s->fd_);
      s->fd_ = -1;
    }
  sockets().clear();
}

namespace {
const bool g_fork_handlers = [] {
  return ::pthread_atfork([] { g_sockets_mu.lock(); }, [] { g_sockets_mu.unlock(); },
                          [] {
                            DoorbellSocket::close_in_child();
                            g_sockets_mu.unlock();
                          }) == 0;
}();
}  // namespace

std::shared_ptr<DoorbellSocket> DoorbellSocket::get(const DoorbellAddress& address, const Label& who) {
  const auto key = std::make_pair(address.nonce, address.offset);
  const DoorbellName name = name_of(address.nonce, address.offset);
  for (int attempt = 0;; ++attempt) {
    std::unique_lock g(g_sockets_mu);
    auto& all = sockets();
    const auto it = all.find(key);
    if (it != all.end())
      if (auto live = it->second.lock()) return live;
    // An expired entry: its socket's last handle is being destroyed and
    // may not have closed it yet, so the name may still be bound.
    const bool closing = it != all.end();
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      const std::error_code code(errno, std::system_category());
      raise<SystemError>(who, "cannot make its wait handle's socket: " + code.message(),
                         "close descriptors this process no longer needs or raise its limit (ulimit -n)", code);
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&name.addr), name.len) == 0) {
      std::shared_ptr<DoorbellSocket> made(new DoorbellSocket(fd, address));
      all[key] = made;
      return made;
    }
    const std::error_code code(errno, std::system_category());
    ::close(fd);
    if (code.value() == EADDRINUSE && closing && attempt < 1000) {
      g.unlock();
      ::usleep(100);
      continue;
    }
    raise<SystemError>(who,
                       "cannot bind its wait handle's socket: " + code.message() +
                           (code.value() == EADDRINUSE ? " (another process holds its random name)" : ""),
                       "retry; if it persists, look for a process squatting abstract sockets named ipckit/*", code);
  }
}

DoorbellSocket::~DoorbellSocket() {
  std::lock_guard g(g_sockets_mu);
  auto& all = sockets();
  if (auto it = all.find({address_.nonce, address_.offset}); it != all.end() && it->second.expired()) all.erase(it);
  if (fd_ >= 0) ::close(fd_);
}

void DoorbellSocket::drain() noexcept {
  std::uint64_t buf[8];
  while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) {
  }
}

}  // namespace ipckit::detail
