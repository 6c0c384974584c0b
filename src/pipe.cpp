// Pipe() and Connection: length-prefixed frames over a socketpair or a pipe.
//
// A frame is a 12-byte header (a 4-byte magic, then the payload length in 8
// bytes, both in this machine's byte order: both ends are on one machine)
// followed by the payload. A send writes header and payload with one
// sendmsg/writev when the buffer has room. A receive reads exactly one frame
// (the header, then the payload), never beyond it, so poll() on the
// descriptor tells the truth about the next message.
#include "ipckit/pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <limits>
#include <system_error>

namespace ipckit {

namespace {

constexpr std::uint32_t kMagic = 0x31706b69;  // "ikp1" in memory on little-endian machines
// A message's buffer starts at this size and doubles as bytes arrive.
constexpr std::size_t kFirstChunk = std::size_t{64} << 10;
// A buffer this large is released after its message, not kept for the next.
constexpr std::size_t kKeepBuffer = std::size_t{1} << 20;

std::string size_text(std::size_t bytes) {
  if (bytes < (std::size_t{10} << 10)) return std::to_string(bytes) + " bytes";
  if (bytes < (std::size_t{10} << 20)) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes >> 20) + " MiB";
}

[[noreturn]] void throw_errno(const std::string& label, const char* call, int err) {
  const std::error_code code(err, std::system_category());
  std::string what = label + ": " + call + " failed: " + code.message();
  if (err == EMFILE || err == ENFILE) what += " (out of file descriptors: close some, or raise `ulimit -n`)";
  throw SystemError(label, what, code);
}

// Writing to a pipe whose reader is gone raises SIGPIPE, which kills by
// default; sockets have MSG_NOSIGNAL, pipes have nothing like it. So a pipe
// write runs with SIGPIPE blocked in this thread (the signal is sent to the
// writing thread), and a SIGPIPE it raised is taken off before unblocking.
// One that was pending before (the program's own, blocked) is left alone.
class QuietSigpipe {
 public:
  QuietSigpipe() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  QuietSigpipe(const QuietSigpipe&) = delete;
  QuietSigpipe& operator=(const QuietSigpipe&) = delete;
  ~QuietSigpipe() {
    const int saved = errno;
    if (raised_ && !was_pending_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }
  void raised() noexcept { raised_ = true; }

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
  bool raised_ = false;
};

// Drops the first `n` bytes written from the vector [iov, iov + count).
void advance(iovec*& iov, int& count, std::size_t n) noexcept {
  while (count > 0 && n >= iov->iov_len) {
    n -= iov->iov_len;
    ++iov;
    --count;
  }
  if (count > 0) {
    iov->iov_base = static_cast<char*>(iov->iov_base) + n;
    iov->iov_len -= n;
  }
}

void check_usable(const std::string& label, int fd, bool direction_ok, const char* call, const char* fix) {
  const std::string name = label.empty() ? "a moved-from Connection" : label;
  if (fd < 0)
    throw InvalidArgument(name, name + ": " + call +
                                    " on a closed connection (close() was called on this end, or "
                                    "it was moved from)");
  if (!direction_ok) throw InvalidArgument(name, name + ": " + call + " on the " + fix);
}

}  // namespace

Connection::Connection(int fd, bool readable, bool writable, bool socket, std::string label,
                       std::size_t max_message) noexcept
    : fd_(fd),
      readable_(readable),
      writable_(writable),
      socket_(socket),
      label_(std::move(label)),
      max_message_(max_message) {}

Connection::Fd& Connection::Fd::operator=(Fd&& o) noexcept {
  std::swap(n, o.n);
  Fd replaced(std::move(o));  // closes what this held
  return *this;
}

// Linux releases the descriptor even when close() reports EINTR: never retry.
Connection::Fd::~Fd() {
  if (n >= 0) ::close(n);
}

void Connection::close() noexcept { fd_ = Fd(); }

int Connection::fileno() const {
  check_usable(label_, fd_.n, true, "fileno()", "");
  return fd_.n;
}

void Connection::set_max_message(std::size_t bytes) {
  if (bytes == 0) throw InvalidArgument(label_, label_ + ": max_message must be at least 1 byte");
  max_message_ = bytes;
}

// ---------------------------------------------------------------------------
// Sending

void Connection::send_frame(std::string_view first, std::string_view second) {
  check_usable(label_, fd_.n, writable_, "send", "receive-only end of a one-way Pipe(false): send on the second end");
  const std::size_t length = first.size() + second.size();
  if (length > max_message_)
    throw MessageTooLarge(label_, label_ + ": a message of " + std::to_string(length) + " bytes is over max_message (" +
                                      std::to_string(max_message_) +
                                      " bytes); nothing was sent. Raise max_message "
                                      "on both ends (PipeOptions or set_max_message), or send it in parts");
  unsigned char header[kHeaderSize];
  const std::uint64_t length64 = length;
  std::memcpy(header, &kMagic, 4);
  std::memcpy(header + 4, &length64, 8);
  iovec parts[3] = {{header, kHeaderSize},
                    {const_cast<char*>(first.data()), first.size()},
                    {const_cast<char*>(second.data()), second.size()}};
  iovec* iov = parts;
  int count = second.empty() ? 2 : 3;
  std::optional<QuietSigpipe> quiet;
  if (!socket_) quiet.emplace();
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t n = socket_ ? ::sendmsg(fd_.n, &msg, MSG_NOSIGNAL) : ::writev(fd_.n, iov, count);
    if (n >= 0) {
      advance(iov, count, static_cast<std::size_t>(n));
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    // Someone made the descriptor non-blocking (an event loop may): wait for room.
    if (err == EAGAIN || err == EWOULDBLOCK) {
      pollfd p{fd_.n, POLLOUT, 0};
      (void)::poll(&p, 1, -1);
      continue;
    }
    if (err == EPIPE || err == ECONNRESET) {
      if (quiet) quiet->raised();
      throw Closed(label_, label_ +
                               ": cannot send, the peer is gone (it closed its end, exited or was killed). "
                               "Stop sending on this connection");
    }
    throw_errno(label_, socket_ ? "sendmsg" : "writev", err);
  }
}

// ---------------------------------------------------------------------------
// Receiving

namespace {

// Waits until `fd` has `events` or `until` comes; EINTR resumes with the time left.
bool wait_for(int fd, short events, detail::Deadline until, const std::string& label) {
  for (;;) {
    timespec ts{};
    timespec* left = nullptr;
    if (!until.is_never()) {
      const auto ns = until.left().count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      left = &ts;
    }
    pollfd p{fd, events, 0};
    const int r = ::ppoll(&p, 1, left, nullptr);
    if (r > 0) return true;  // ready, or POLLHUP / POLLERR: the read or write says which
    if (r == 0) return false;
    if (errno != EINTR) throw_errno(label, "ppoll", errno);
  }
}

}  // namespace

bool Connection::wait_readable(detail::Deadline until) {
  check_usable(label_, fd_.n, readable_, "poll", "send-only end of a one-way Pipe(false): poll the first end");
  return wait_for(fd_.n, POLLIN, until, label_);
}

// Reads what is there, up to `n` bytes, waiting until `until` for the first:
// the count read, or 0 when `until` came first. The descriptor never blocks
// a read: a socket is read with MSG_DONTWAIT, a pipe's reading end is
// non-blocking (Pipe() makes it so).
std::size_t Connection::read_some(char* p, std::size_t n, detail::Deadline until) {
  for (;;) {
    const ssize_t r = socket_ ? ::recv(fd_.n, p, n, MSG_DONTWAIT) : ::read(fd_.n, p, n);
    if (r > 0) return static_cast<std::size_t>(r);
    if (r == 0) throw_eof();
    const int err = errno;
    if (err == EINTR) continue;
    if (err == ECONNRESET) throw_eof();  // a Unix socket's peer closed with data of ours unread
    if (err != EAGAIN && err != EWOULDBLOCK) throw_errno(label_, socket_ ? "recv" : "read", err);
    if (until.is_now() || !wait_for(fd_.n, POLLIN, until, label_)) return 0;
  }
}

void Connection::throw_eof() const {
  if (header_got_ == 0)
    throw Closed(label_, label_ +
                             ": the peer is gone (it closed its end, exited or was killed) and every message it "
                             "sent was received (Python's EOFError). Close this connection");
  const std::string got = header_got_ < kHeaderSize
                              ? std::to_string(header_got_) + " bytes of a message header"
                              : size_text(frame_got_) + " of a message of " + size_text(frame_length_);
  throw Closed(label_, label_ +
                           ": the peer is gone in the middle of sending a message (killed or exited while "
                           "sending?): only " +
                           got + " arrived. Close this connection");
}

void Connection::check_header() {
  std::uint32_t magic = 0;
  std::uint64_t length = 0;
  std::memcpy(&magic, header_, 4);
  std::memcpy(&length, header_ + 4, 8);
  if (magic != kMagic) {
    broken_ =
        "bytes that are not an ipckit message arrived (something other than a Connection wrote into the "
        "descriptor, or the peer is not ipckit)";
    throw DecodeError(label_, label_ + ": " + broken_ + "; the connection cannot be read any more: close it");
  }
  if (length > max_message_) {
    broken_ = "a message header announced " + std::to_string(length) + " bytes, over max_message (" +
              std::to_string(max_message_) + " bytes)";
    throw MessageTooLarge(label_, label_ + ": " + broken_ +
                                      "; nothing was allocated for it, and the connection "
                                      "cannot be read any more: close it. If the peer really sends messages "
                                      "this large, raise max_message (PipeOptions or set_max_message)");
  }
  frame_length_ = static_cast<std::size_t>(length);
  frame_got_ = 0;
}

bool Connection::receive_frame(detail::Deadline until, std::size_t max_length) {
  check_usable(label_, fd_.n, readable_, "recv", "send-only end of a one-way Pipe(false): receive on the first end");
  if (!broken_.empty())
    throw DecodeError(label_, label_ + ": cannot receive: earlier, " + broken_ + ". Close this connection");
  while (header_got_ < kHeaderSize) {
    const std::size_t n = read_some(reinterpret_cast<char*>(header_) + header_got_, kHeaderSize - header_got_, until);
    if (n == 0) return false;
    header_got_ += n;
    if (header_got_ == kHeaderSize) check_header();
  }
  if (frame_length_ > max_length)
    throw MessageTooLarge(label_, label_ + ": the next message has " + std::to_string(frame_length_) +
                                      " bytes, over the " + std::to_string(max_length) +
                                      " asked for; it stays first in line for a receive that accepts it");
  // A heap block whatever the size (not the string's in-object buffer), so
  // that decoding finds the payload aligned.
  if (frame_.capacity() < 64) frame_.reserve(64);
  while (frame_got_ < frame_length_) {
    if (frame_got_ >= frame_.size()) frame_.resize(std::min(frame_length_, std::max(2 * frame_.size(), kFirstChunk)));
    const std::size_t room = std::min(frame_.size(), frame_length_) - frame_got_;
    const std::size_t n = read_some(frame_.data() + frame_got_, room, until);
    if (n == 0) return false;
    frame_got_ += n;
  }
  return true;
}

std::string Connection::take_frame() noexcept {
  frame_.resize(frame_length_);  // never grows: frame_ holds at least the message
  std::string out = std::move(frame_);
  frame_.clear();
  header_got_ = frame_got_ = frame_length_ = 0;
  return out;
}

void Connection::finish_frame() noexcept {
  if (frame_.size() > kKeepBuffer) std::string().swap(frame_);
  header_got_ = frame_got_ = frame_length_ = 0;
}

void Connection::throw_timeout(std::optional<std::chrono::nanoseconds> timeout) const {
  using std::chrono::milliseconds;
  std::string when = "by the deadline";
  if (timeout) when = "within " + std::to_string(std::chrono::duration_cast<milliseconds>(*timeout).count()) + " ms";
  std::string part;
  if (header_got_ == kHeaderSize)
    part = " (" + size_text(frame_got_) + " of a message of " + size_text(frame_length_) +
           " came; the next receive goes on from there)";
  throw Timeout(label_, label_ + ": no whole message arrived " + when + part);
}

void Connection::throw_undecodable(const char* type, const char* why, std::size_t bytes) const {
  throw DecodeError(label_, label_ + ": a message of " + std::to_string(bytes) + " bytes did not decode as " + type +
                                " (" + why + "); it was dropped. Does the peer send that type?");
}

// ---------------------------------------------------------------------------

std::pair<Connection, Connection> Pipe(bool duplex, const PipeOptions& options) {
  static std::atomic<unsigned> pipes{0};
  const std::string name = options.name.empty() ? "Pipe-" + std::to_string(++pipes) : options.name;
  if (options.max_message == 0) throw InvalidArgument(name, name + ": PipeOptions::max_message must be at least 1");
  int fds[2];
  if (duplex) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno(name, "socketpair", errno);
  } else {
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(name, "pipe2", errno);
    // Only the reading end: a timed receive must never block in read().
    const int flags = ::fcntl(fds[0], F_GETFL);
    if (flags < 0 || ::fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
      const int err = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      throw_errno(name, "fcntl", err);
    }
  }
  return {Connection(fds[0], true, duplex, duplex, name + "[0]", options.max_message),
          Connection(fds[1], duplex, true, duplex, name + "[1]", options.max_message)};
}

}  // namespace ipckit
