// Wait handles on shared words (doorbells) and on pool futures (eventfds).
#include "ipckit/wait_handle.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

#include "doorbell.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/error.hpp"
#include "ipckit/pool.hpp"
#include "wait_source.hpp"

namespace ipckit {

const std::string& WaitHandle::label() const noexcept {
  static const std::string none = "an empty wait handle";
  return src_ ? src_->label() : none;
}

namespace detail {
namespace {

class SharedWordSource final : public WaitSource {
 public:
  SharedWordSource(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& watchers, ArmKind kind,
                   std::function<bool()> ready, std::shared_ptr<const void> keepalive, Label label)
      : word_(word),
        watchers_(watchers),
        kind_(kind),
        ready_(std::move(ready)),
        keep_(std::move(keepalive)),
        label_(std::move(label)),
        pid_(::getpid()) {
    const auto address = publish_watch(&word_);
    if (!address)
      raise<InvalidArgument>(label_, "this process has no slot in its segment's process table (it is full)",
                             "create the segment with a larger max_processes (SegmentOptions)");
    sock_ = DoorbellSocket::get(*address, label_);
  }

  [[nodiscard]] int fd() const noexcept override { return sock_->fd(); }
  [[nodiscard]] const std::string& label() const noexcept override { return label_.text; }
  [[nodiscard]] bool ready() const override { return ready_(); }

  bool arm() override {
    if (::getpid() != pid_)
      raise<InvalidArgument>(label_, "its wait handle was made by process " + std::to_string(pid_) + ", not this one",
                             "make a new wait handle in the forked child");
    const auto address = publish_watch(&word_);  // the filter bit again: cheap, and survives a reclaimed bit
    if (!address || address->nonce != sock_->address().nonce)
      raise<InvalidArgument>(label_, "this process lost its slot in the segment's process table",
                             "make a new wait handle");
    sock_->drain();
    // After the filter bit, before the look: a waker that changes the word
    // after this sees the flag (and rings), or the look below sees its change.
    watchers_.fetch_or(kSleeperAsync, std::memory_order_seq_cst);
    if (kind_ == ArmKind::Lock) {
      std::uint32_t v = word_.load(std::memory_order_relaxed);
      while (v != 0 && (v & kLockWaiters) == 0 &&
             !word_.compare_exchange_weak(v, v | kLockWaiters, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      }
    }
    return ready_();
  }

 private:
  std::atomic<std::uint32_t>& word_;
  std::atomic<std::uint32_t>& watchers_;
  ArmKind kind_;
  std::function<bool()> ready_;
  std::shared_ptr<const void> keep_;
  Label label_;
  pid_t pid_;
  std::shared_ptr<DoorbellSocket> sock_;
};

// A future is completed in this process (by the pool's collector thread):
// its listener writes an eventfd, which stays readable once done.
class FutureSource final : public WaitSource {
 public:
  explicit FutureSource(std::shared_ptr<FutureState> state) : state_(std::move(state)), label_(state_->label()) {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
      const std::error_code code(errno, std::system_category());
      throw SystemError(label_,
                        "cannot make a wait handle for " + label_ + ": " + code.message() +
                            "; close descriptors this process no longer needs or raise its limit (ulimit -n)",
                        code);
    }
    fd_ = std::make_shared<EventFd>(fd);
    // The listener holds the descriptor weakly: a handle dropped before the
    // task is done closes it, and the listener then writes nowhere.
    state_->add_listener([weak = std::weak_ptr<EventFd>(fd_)] {
      if (auto live = weak.lock()) {
        const std::uint64_t one = 1;
        (void)!::write(live->fd, &one, sizeof one);
      }
    });
  }

  [[nodiscard]] int fd() const noexcept override { return fd_->fd; }
  [[nodiscard]] const std::string& label() const noexcept override { return label_; }
  [[nodiscard]] bool ready() const override { return state_->done.load(std::memory_order_acquire); }
  // Done is for good: the descriptor is never emptied once it is.
  bool arm() override { return ready(); }

 private:
  struct EventFd {
    explicit EventFd(int f) : fd(f) {}
    ~EventFd() { ::close(fd); }
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;
    int fd;
  };
  std::shared_ptr<FutureState> state_;
  std::string label_;
  std::shared_ptr<EventFd> fd_;
};

}  // namespace

WaitHandle shared_word_handle(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& watchers, ArmKind kind,
                              std::function<bool()> ready, std::shared_ptr<const void> keepalive, const Label& object,
                              const std::string& what) {
  return WaitHandle(std::make_shared<SharedWordSource>(word, watchers, kind, std::move(ready), std::move(keepalive),
                                                       Label(object.object, object.segment, what + object.text)));
}

WaitHandle future_wait_handle(const std::shared_ptr<FutureState>& state) {
  return WaitHandle(std::make_shared<FutureSource>(state));
}

}  // namespace detail
}  // namespace ipckit
