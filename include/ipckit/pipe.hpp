// ipckit/pipe.hpp — Python's multiprocessing.Pipe(): two connected ends for two processes.
//
//   auto [parent_end, child_end] = ipckit::Pipe();   // duplex; Pipe(false): one-way
//   ipckit::Process child([&] {
//     parent_end.close();                             // each process closes the end it does not use
//     child_end.send(std::vector<int>{42, 7});
//   });
//   child.start();
//   child_end.close();
//   auto v = parent_end.recv<std::vector<int>>();     // blocks; recv(2s) / recv_until(t) throw Timeout
//   parent_end.poll(100ms);                           // whether a recv would find data
//
// Pipe() makes a connected pair before a fork; both processes inherit both
// ends. Duplex (the default) is a Unix stream socketpair: both ends send and
// receive. Pipe(false) is a pipe: the first end only receives, the second only
// sends, as in Python. Objects travel as the queues encode them: trivially
// copyable structs as their bytes, std::string / std::vector of numbers as a
// count and the elements, everything else through cereal's binary archive (so
// include the cereal/types/... header for standard containers). send_bytes /
// recv_bytes carry raw bytes. Each send is one message, however large: a
// length-prefixed frame the receiver reads whole.
//
// The end of the peer. recv() on an end whose peer closed, exited or was
// killed gets the messages sent before, then throws Closed (Python's
// EOFError); poll() returns true at that point, as in Python. A peer killed
// in the middle of sending a message makes recv throw Closed, saying how much
// of the message came. send() to a peer that is gone throws Closed (EPIPE);
// it never raises SIGPIPE. The peer is only "gone" when no process holds its
// end any more: close the end you do not use in each process after the fork,
// as Python's documentation says, or a dead peer goes unnoticed while this
// process still holds its end.
//
// The peer is input. A frame header announcing more than max_message bytes
// (1 GiB by default, settable) throws MessageTooLarge before anything is
// allocated, and a message's buffer grows only as its bytes arrive, so a
// forged length costs no more memory than what the peer really sends. Bytes
// that are not an ipckit frame throw DecodeError. After either, the receiving
// side of the end is unusable (the stream lost its framing): later receives
// throw DecodeError saying why. A message that arrives whole but does not
// decode as T is dropped with DecodeError; the next recv reads the next one.
//
// Blocking forms, following the README's table:
//   recv<T>() / recv_bytes()                wait as long as it takes (Python's recv has no timeout)
//   recv<T>(d) / recv_bytes(d)              throw Timeout after `d`
//   recv_until<T>(t) / recv_bytes_until(t)  throw Timeout at time point `t` of any clock
//   try_recv<T>() / try_recv_bytes()        nullopt unless a whole message is there now
//   poll() / poll(d) / poll_until(t)        bool, as Python's poll(timeout)
// A zero or negative `d`, or a `t` already past, is a single non-blocking try.
// A receive that times out in the middle of a message (its sender was
// stopped, or is slow) keeps what came, and the next receive goes on from
// there: the bound holds whatever the peer does, and no byte is lost. EOF is
// not "not now": every form throws Closed for it, try_recv included.
// send() has no timeout, as in Python: it blocks while the peer's buffer is
// full (the peer alive but not reading).
//
// Misuse throws InvalidArgument naming the connection: any call on an end
// after close() (Python's OSError "handle is closed"; close() itself may be
// repeated), send on the receive-only end or recv/poll on the send-only end
// of Pipe(false).
//
// Thread-safety: as Python's Connection, an end is not for concurrent use by
// several threads doing the same thing. One thread sending while one other
// thread receives on the same end is fine (they share no state); two senders
// or two receivers need a lock of their own; close() must not race with any
// other call. fileno() is for poll/select/epoll: read and write the end only
// through its Connection: a message is a frame, not raw bytes, and the
// reading end of Pipe(false) is non-blocking (O_NONBLOCK, shared by every
// process that holds it) so that a timed receive never blocks in read().
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/codec.hpp"  // messages are encoded as queue items are
#include "ipckit/detail/deadline.hpp"
#include "ipckit/error.hpp"

namespace ipckit {

class Connection;

struct PipeOptions {
  std::string name{};                              // "Pipe-<n>" by default; the ends are "<name>[0]" and "<name>[1]"
  std::size_t max_message = std::size_t{1} << 30;  // largest message either end sends or accepts, in bytes
};

// A connected pair of ends. duplex: both send and receive (a socketpair);
// otherwise the first end only receives and the second only sends (a pipe).
// Both descriptors are close-on-exec. Throws SystemError (out of descriptors),
// InvalidArgument (max_message 0).
std::pair<Connection, Connection> Pipe(bool duplex = true, const PipeOptions& options = {});

class Connection {
 public:
  Connection(Connection&& other) noexcept = default;  // the moved-from end is closed
  Connection& operator=(Connection&& other) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() = default;  // closes this process's descriptor

  // Sends one object. Blocks while the peer's buffer is full. Throws Closed
  // (the peer is gone), MessageTooLarge (its encoding exceeds max_message;
  // nothing is sent), InvalidArgument (closed, or the receive-only end).
  template <class T>
  void send(const T& obj) {
    const auto [first, second] = detail::encode_pieces(obj);
    send_frame(first, second);
  }
  // Sends `bytes` as one message (empty is allowed). Throws as send().
  void send_bytes(std::string_view bytes) { send_frame(bytes, {}); }
  void send_bytes(std::span<const std::byte> bytes) {
    send_frame({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, {});
  }

  // Receives one object sent by send<T>() (or bytes that are its encoding).
  // Throws Closed (the peer is gone: EOF), DecodeError (the message does not
  // decode as T, and is dropped; or the stream is broken), MessageTooLarge (a
  // header over max_message), InvalidArgument (closed, or the send-only end).
  template <class T>
  T recv() {
    return *take<T>(detail::Deadline::never());
  }
  // As recv(), but throws Timeout if no whole message came within `timeout`.
  template <class T, class Rep, class Period>
  T recv(const std::chrono::duration<Rep, Period>& timeout) {
    return take_or_throw<T>(detail::Deadline::after(timeout), detail::saturating_ns(timeout));
  }
  template <class T, class C, class D>
  T recv_until(const std::chrono::time_point<C, D>& t) {
    return take_or_throw<T>(detail::Deadline::at(t), std::nullopt);
  }
  // nullopt unless a whole message is there now; throws as recv() otherwise.
  template <class T>
  std::optional<T> try_recv() {
    return take<T>(detail::Deadline::now());
  }

  // Receives one message's bytes (of send_bytes, or any send's encoding).
  // Throws as recv() (no DecodeError for the message itself).
  std::string recv_bytes() { return *take_bytes(detail::Deadline::never(), kNoLimit); }
  // As Python's recv_bytes(maxlength): throws MessageTooLarge if the next
  // message is longer than `max_length`. Unlike Python's, the end stays
  // usable: the message stays first in line for a call that accepts it.
  std::string recv_bytes(std::size_t max_length) { return *take_bytes(detail::Deadline::never(), max_length); }
  template <class Rep, class Period>
  std::string recv_bytes(const std::chrono::duration<Rep, Period>& timeout) {
    return bytes_or_throw(detail::Deadline::after(timeout), detail::saturating_ns(timeout));
  }
  template <class C, class D>
  std::string recv_bytes_until(const std::chrono::time_point<C, D>& t) {
    return bytes_or_throw(detail::Deadline::at(t), std::nullopt);
  }
  std::optional<std::string> try_recv_bytes() { return take_bytes(detail::Deadline::now(), kNoLimit); }

  // Whether there is data to read: part of a message, or the peer's EOF (a
  // recv then throws Closed). poll() does not wait; poll(d) waits up to `d`.
  // Throws InvalidArgument (closed, or the send-only end).
  bool poll() { return wait_readable(detail::Deadline::now()); }
  IPCKIT_DETAIL_TIMED_FORMS(bool, poll, poll_until, wait_readable);

  // Closes this process's descriptor of this end. Repeating it does nothing.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return fd_.n < 0; }
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  [[nodiscard]] bool writable() const noexcept { return writable_; }
  // The descriptor, for poll/select/epoll. Throws InvalidArgument if closed.
  [[nodiscard]] int fileno() const;
  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  [[nodiscard]] std::size_t max_message() const noexcept { return max_message_; }
  // Throws InvalidArgument for 0.
  void set_max_message(std::size_t bytes);

 private:
  friend std::pair<Connection, Connection> Pipe(bool duplex, const PipeOptions& options);

  static constexpr std::size_t kNoLimit = static_cast<std::size_t>(-1);
  static constexpr std::size_t kHeaderSize = 12;  // a 4-byte magic, then the length in 8 bytes

  Connection(int fd, bool readable, bool writable, bool socket, std::string label, std::size_t max_message) noexcept;

  void send_frame(std::string_view first, std::string_view second);
  // Reads until one whole message is in frame_; false if `until` came first
  // (what came is kept for the next call). Throws Closed, MessageTooLarge
  // (longer than `max_length`, which leaves the message in line; or a header
  // over max_message), DecodeError (not a frame), InvalidArgument.
  bool receive_frame(detail::Deadline until, std::size_t max_length);
  // Up to `n` bytes, what is there, waiting until `until` for the first; 0 if it came first.
  std::size_t read_some(char* p, std::size_t n, detail::Deadline until);
  // Checks the header just read and takes the message's length from it.
  void check_header();
  [[noreturn]] void throw_eof() const;
  bool wait_readable(detail::Deadline until);
  // The message received, moved out; the next receive starts a new one.
  std::string take_frame() noexcept;
  // Forgets the message received, keeping the buffer for the next one.
  void finish_frame() noexcept;
  [[noreturn]] void throw_timeout(std::optional<std::chrono::nanoseconds> timeout) const;
  [[noreturn]] void throw_undecodable(const char* type, const char* why, std::size_t bytes) const;

  template <class T>
  std::optional<T> take(detail::Deadline until) {
    if (!receive_frame(until, kNoLimit)) return std::nullopt;
    struct Finish {  // the message is consumed whether it decodes or not
      Connection* c;
      ~Finish() { c->finish_frame(); }
    } finish{this};
    std::optional<T> out(std::in_place);
    try {
      // frame_ is a heap block (see receive_frame), aligned as decode_into needs.
      detail::decode_into(*out, frame_.data(), frame_length_);
    } catch (const std::exception& e) {  // cereal's, or a wrong size
      throw_undecodable(typeid(T).name(), e.what(), frame_length_);
    }
    return out;
  }
  template <class T>
  T take_or_throw(detail::Deadline until, std::optional<std::chrono::nanoseconds> timeout) {
    auto out = take<T>(until);
    if (!out) throw_timeout(timeout);
    return std::move(*out);
  }
  std::optional<std::string> take_bytes(detail::Deadline until, std::size_t max_length) {
    if (!receive_frame(until, max_length)) return std::nullopt;
    return take_frame();
  }
  std::string bytes_or_throw(detail::Deadline until, std::optional<std::chrono::nanoseconds> timeout) {
    auto out = take_bytes(until, kNoLimit);
    if (!out) throw_timeout(timeout);
    return std::move(*out);
  }

  // A descriptor that moves: the moved-from one is -1, and assigning closes the one replaced.
  struct Fd {
    int n = -1;
    Fd() = default;
    explicit Fd(int fd) noexcept : n(fd) {}
    Fd(Fd&& o) noexcept : n(std::exchange(o.n, -1)) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();
  };

  Fd fd_;
  bool readable_ = false;
  bool writable_ = false;
  bool socket_ = false;  // a socketpair end (else a pipe end)
  std::string label_;
  std::size_t max_message_ = 0;
  // The message being received, kept across a receive that timed out in its
  // middle. frame_ grows as bytes arrive, never to the announced length at once.
  unsigned char header_[kHeaderSize] = {};
  std::size_t header_got_ = 0;
  std::size_t frame_length_ = 0;  // valid once header_got_ == kHeaderSize
  std::size_t frame_got_ = 0;
  std::string frame_;
  std::string broken_;  // why the receiving side lost its framing; empty while it has not
};

}  // namespace ipckit
