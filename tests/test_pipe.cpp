// test_pipe.cpp — ipckit::Pipe() / Connection between real processes.
//
// The behaviour CPython's test_multiprocessing checks for Connection
// (_TestConnection.test_connection, test_duplex_false, test_spawn_close), plus
// what a peer can do to a receiver: die mid-message, stop mid-message, forge a
// header, send garbage. Each process closes the end it does not use, as
// Python's documentation asks; a peer's death is only visible once no process
// holds its end.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ipckit/pipe.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Connection;
using ipckit::Pipe;
using ipckit::testing::Child;
using ipckit::testing::Signal;
using Clock = std::chrono::steady_clock;

namespace {

struct Point {  // trivially copyable: travels as its bytes
  std::int32_t x;
  double y;
  bool operator==(const Point&) const = default;
};

struct Job {  // through cereal
  std::string name;
  std::vector<int> args;
  std::map<std::string, int> tags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, args, tags);
  }
  bool operator==(const Job&) const = default;
};

// `n` bytes that differ with `seed` and position, so a lost or moved chunk shows.
std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u ^ seed;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

// The wire header of ipckit's frames, forged.
std::string forged_header(std::uint64_t length) {
  std::string h = "ikp1";
  h.append(reinterpret_cast<const char*>(&length), sizeof length);
  return h;
}

void write_raw(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    ASSERT_GT(n, 0) << std::strerror(errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// The state letter of /proc/<pid>/stat: 'S' sleeping, 'T' stopped, ...
char proc_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

template <class F>
std::chrono::milliseconds time_of(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// A child that echoes every message back as bytes until its peer is gone
// (CPython's _echo).
Child echo_child(Connection& mine, Connection& theirs) {
  return Child([&] {
    mine.close();
    try {
      for (;;) theirs.send_bytes(theirs.recv_bytes());
    } catch (const ipckit::Closed&) {
    }
  });
}

}  // namespace

// CPython's _TestConnection.test_connection, against an echoing child.
TEST(Pipe, EchoesObjectsAndBytesAsInCPythonsConnectionTest) {
  auto [conn, child_conn] = Pipe();
  Child child = echo_child(conn, child_conn);
  child_conn.close();

  const std::tuple<int, double, std::string> obj{1, 2.0, "hello"};
  conn.send(obj);
  EXPECT_EQ((conn.recv<std::tuple<int, double, std::string>>()), obj);

  const std::string msg = "hello";
  conn.send_bytes(msg);
  EXPECT_EQ(conn.recv_bytes(), msg);

  EXPECT_FALSE(conn.poll());
  conn.send(Point{7, 0.5});
  EXPECT_TRUE(conn.poll(10s));
  EXPECT_TRUE(conn.poll());  // still there until received
  EXPECT_EQ(conn.recv<Point>(), (Point{7, 0.5}));

  const std::string really_big_msg(std::size_t{16} << 20, 'X');
  conn.send_bytes(really_big_msg);
  EXPECT_EQ(conn.recv_bytes(), really_big_msg);

  EXPECT_TRUE(conn.readable());
  EXPECT_TRUE(conn.writable());
  conn.close();  // the child sees EOF and exits
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Pipe, ObjectsRoundTripBothWaysBetweenProcesses) {
  auto [parent, child_end] = Pipe();
  const Job job{"resize", {640, 480}, {{"a", 1}, {"b", 2}}};
  Child child([&] {
    parent.close();
    Job j = child_end.recv<Job>();
    j.args.push_back(static_cast<int>(j.tags.size()));
    child_end.send(j);
    const auto p = child_end.recv<Point>();
    child_end.send(Point{p.x + 1, p.y * 2});
    child_end.send(std::vector<double>{1.5, -2.25});
    child_end.send(std::string("done"));
  });
  child_end.close();

  parent.send(job);
  Job expected = job;
  expected.args.push_back(2);
  EXPECT_EQ(parent.recv<Job>(), expected);
  parent.send(Point{41, 1.25});
  EXPECT_EQ(parent.recv<Point>(), (Point{42, 2.5}));
  EXPECT_EQ(parent.recv<std::vector<double>>(), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(parent.recv<std::string>(), "done");
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Pipe, BytesRoundTripBothWaysIncludingEmptyMessages) {
  auto [parent, child_end] = Pipe();
  Child child([&] {
    parent.close();
    EXPECT_EQ(child_end.recv_bytes(), "");
    const std::string binary("a\0b\0\xff", 5);
    EXPECT_EQ(child_end.recv_bytes(), binary);
    const std::byte raw[] = {std::byte{0}, std::byte{1}, std::byte{255}};
    child_end.send_bytes(std::span<const std::byte>(raw));
    child_end.send_bytes("");
  });
  child_end.close();
  parent.send_bytes("");
  parent.send_bytes(std::string("a\0b\0\xff", 5));
  EXPECT_EQ(parent.recv_bytes(), std::string("\0\1\xff", 3));
  EXPECT_EQ(parent.recv_bytes(), "");
  EXPECT_EQ(child.wait_exit(), 0);
}

// Messages far larger than a socket's or a pipe's buffer, sender and
// receiver in different processes, in both directions.
TEST(Pipe, LargeMessagesCrossProcessesWhole) {
  for (const bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    // One-way: one pipe each way. Duplex: the same pair twice.
    auto [down_r, down_w] = Pipe(duplex);
    auto [up_r, up_w] = Pipe(duplex);
    Connection& to_child = duplex ? down_r : down_w;
    Connection& from_child = duplex ? down_r : up_r;
    Connection& child_in = duplex ? down_w : down_r;
    Connection& child_out = duplex ? down_w : up_w;
    std::vector<double> numbers(std::size_t{3} << 17);  // 3 MiB
    std::iota(numbers.begin(), numbers.end(), 0.5);
    Child child([&] {
      to_child.close();
      from_child.close();
      const std::string got = child_in.recv_bytes();
      EXPECT_EQ(got.size(), std::size_t{8} << 20);
      EXPECT_TRUE(got == pattern(std::size_t{8} << 20, 1));
      EXPECT_TRUE(child_in.recv<std::vector<double>>() == numbers);
      child_out.send_bytes(pattern(std::size_t{6} << 20, 2));
      child_out.send(numbers);
    });
    child_in.close();
    child_out.close();
    to_child.send_bytes(pattern(std::size_t{8} << 20, 1));
    to_child.send(numbers);
    EXPECT_TRUE(from_child.recv_bytes() == pattern(std::size_t{6} << 20, 2));
    EXPECT_TRUE(from_child.recv<std::vector<double>>() == numbers);
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

// One thread sending and one receiving on the same end is supported: both
// processes send 8 MiB at once (alone, each would block in send forever).
TEST(Pipe, OneSenderAndOneReceiverThreadPerEndTransferBothWaysAtOnce) {
  auto [a, b] = Pipe();
  const auto exchange = [](Connection& c, unsigned mine, unsigned theirs) {
    std::string got;
    std::thread receiver([&] { got = c.recv_bytes(); });
    c.send_bytes(pattern(std::size_t{8} << 20, mine));
    receiver.join();
    EXPECT_TRUE(got == pattern(std::size_t{8} << 20, theirs));
  };
  Child child([&] {
    a.close();
    exchange(b, 2, 1);
  });
  b.close();
  exchange(a, 1, 2);
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Pipe, PollReturnsAtOnceWithoutWaitingAndWaitsAtLeastItsTimeout) {
  auto [a, b] = Pipe();
  bool ready = true;
  EXPECT_LT(time_of([&] { ready = a.poll(); }), 250ms);
  EXPECT_FALSE(ready);
  EXPECT_LT(time_of([&] { ready = a.poll(-5ms); }), 250ms);
  EXPECT_FALSE(ready);
  auto took = time_of([&] { ready = a.poll(300ms); });
  EXPECT_FALSE(ready);
  EXPECT_GE(took, 299ms);
  EXPECT_LT(took, 300ms + 1500ms);
  took = time_of([&] { ready = a.poll_until(std::chrono::system_clock::now() + 200ms); });
  EXPECT_FALSE(ready);
  EXPECT_GE(took, 199ms);
  EXPECT_LT(took, 200ms + 1500ms);
  EXPECT_FALSE(a.poll_until(Clock::now() - 1s));
}

TEST(Pipe, PollWakesWhenAnotherProcessSends) {
  auto [a, b] = Pipe();
  Signal go;
  Child child([&] {
    a.close();
    ASSERT_TRUE(go.wait());
    b.send(5);
  });
  b.close();
  EXPECT_FALSE(a.poll(50ms));
  go.post();
  bool ready = false;
  EXPECT_LT(time_of([&] { ready = a.poll(20s); }), 10s);
  EXPECT_TRUE(ready);
  EXPECT_TRUE(a.poll_until(Clock::time_point::max()));
  EXPECT_EQ(a.recv<int>(), 5);
  EXPECT_EQ(child.wait_exit(), 0);
  // Python: poll() is true at EOF, and recv then raises EOFError.
  EXPECT_TRUE(a.poll(10s));
  EXPECT_THROW(a.recv<int>(), ipckit::Closed);
}

TEST(Pipe, TimedAndNonBlockingReceivesFollowTheConvention) {
  auto [a, b] = Pipe();
  EXPECT_FALSE(a.try_recv<int>().has_value());
  EXPECT_FALSE(a.try_recv_bytes().has_value());
  auto took = time_of([&] { EXPECT_THROW(a.recv<int>(100ms), ipckit::Timeout); });
  EXPECT_GE(took, 99ms);
  EXPECT_LT(took, 100ms + 1500ms);
  took = time_of([&] { EXPECT_THROW(a.recv_bytes_until(std::chrono::system_clock::now() + 100ms), ipckit::Timeout); });
  EXPECT_GE(took, 99ms);
  EXPECT_LT(took, 100ms + 1500ms);
  EXPECT_LT(time_of([&] { EXPECT_THROW(a.recv<int>(-1s), ipckit::Timeout); }), 250ms);
  EXPECT_LT(time_of([&] { EXPECT_THROW(a.recv_until<int>(Clock::now() - 1h), ipckit::Timeout); }), 250ms);
  EXPECT_THROW(a.recv_bytes(0ns), ipckit::Timeout);
  try {
    a.recv<int>(10ms);
  } catch (const ipckit::Timeout& e) {
    EXPECT_EQ(e.object(), a.label());
    EXPECT_NE(std::string(e.what()).find("within 10 ms"), std::string::npos) << e.what();
  }
  b.send(1);
  b.send(2);
  b.send_bytes("three");
  b.send(4);
  EXPECT_TRUE(a.poll(std::chrono::nanoseconds::max()));  // saturates to never, not an overflow into the past
  EXPECT_EQ(a.try_recv<int>(), 1);
  EXPECT_EQ(a.recv<int>(1s), 2);
  EXPECT_EQ(a.recv_bytes(std::chrono::hours(24 * 365 * 100)), "three");  // a century
  EXPECT_EQ(a.recv_until<int>(std::chrono::system_clock::time_point::max()), 4);
}

// CPython's test_spawn_close and the EOFError cases of test_connection.
TEST(Pipe, ReceivingFromAGonePeerGetsItsMessagesThenClosed) {
  enum class How { Close, Exit, Kill };
  for (const bool duplex : {true, false}) {
    for (const How how : {How::Close, How::Exit, How::Kill}) {
      SCOPED_TRACE(std::string(duplex ? "duplex " : "one-way ") + "how=" + std::to_string(static_cast<int>(how)));
      auto [rd, wr] = Pipe(duplex);
      Signal sent;
      Child child([&] {
        rd.close();
        wr.send(1);
        wr.send_bytes("two");
        if (how == How::Close) wr.close();
        sent.post();
        if (how == How::Kill) std::this_thread::sleep_for(30s);  // killed long before
      });
      wr.close();
      ASSERT_TRUE(sent.wait());
      if (how == How::Kill) child.kill();
      EXPECT_EQ(rd.recv<int>(), 1);
      EXPECT_EQ(rd.recv_bytes(), "two");
      try {
        rd.recv<int>(20s);
        ADD_FAILURE() << "recv after the peer was gone returned";
      } catch (const ipckit::Closed& e) {
        EXPECT_EQ(e.object(), rd.label());
        EXPECT_NE(std::string(e.what()).find("peer is gone"), std::string::npos) << e.what();
      }
      EXPECT_THROW(rd.recv_bytes(), ipckit::Closed);      // and again
      EXPECT_THROW(rd.try_recv_bytes(), ipckit::Closed);  // EOF is not "not now"
      EXPECT_TRUE(rd.poll());
      child.wait_exit();
    }
  }
}

// A peer killed while it sends a message larger than the buffer: the
// receiver gets what came, then a Closed that says so, not a hang or a
// truncated message.
TEST(Pipe, APeerKilledInTheMiddleOfAMessageGivesClosedNotAHang) {
  for (const bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    auto [rd, wr] = Pipe(duplex);
    Child child([&] {
      rd.close();
      wr.send_bytes(pattern(std::size_t{32} << 20, 3));  // blocks: nobody reads yet
    });
    wr.close();
    ASSERT_TRUE(rd.poll(10s));  // it started sending: the header is there
    child.kill();
    EXPECT_EQ(child.wait_exit(), -SIGKILL);
    const auto took = time_of([&] {
      try {
        rd.recv_bytes();
        ADD_FAILURE() << "a cut message was received";
      } catch (const ipckit::Closed& e) {
        EXPECT_NE(std::string(e.what()).find("in the middle of sending a message"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("of a message of 32 MiB"), std::string::npos) << e.what();
      }
    });
    EXPECT_LT(took, 5s);
  }
}

// A receive that times out in the middle of a message (its sender stopped)
// keeps its bound and loses nothing: the next receive completes the message.
TEST(Pipe, ATimedReceiveKeepsItsBoundWhenTheSenderStopsMidMessage) {
  for (const bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    auto [rd, wr] = Pipe(duplex);
    const std::size_t size = std::size_t{16} << 20;
    Child child([&] {
      rd.close();
      wr.send_bytes(pattern(size, 4));
      wr.send(99);
    });
    wr.close();
    ASSERT_TRUE(rd.poll(10s));
    child.kill(SIGSTOP);
    ASSERT_TRUE(ipckit::testing::eventually([&] { return proc_state(child.pid()) == 'T'; }));
    const auto took = time_of([&] {
      try {
        rd.recv_bytes(200ms);
        ADD_FAILURE() << "the whole message arrived from a stopped sender";
      } catch (const ipckit::Timeout& e) {
        EXPECT_NE(std::string(e.what()).find("the next receive goes on from there"), std::string::npos) << e.what();
      }
    });
    EXPECT_GE(took, 199ms);
    EXPECT_LT(took, 200ms + 1500ms);
    EXPECT_FALSE(rd.try_recv_bytes().has_value());
    child.kill(SIGCONT);
    EXPECT_TRUE(rd.recv_bytes() == pattern(size, 4));
    EXPECT_EQ(rd.recv<int>(), 99);
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

// The peer is input: a header announcing 2^50 bytes throws MessageTooLarge
// instead of allocating, and the end cannot be read any more.
TEST(Pipe, AForgedHugeLengthHeaderGivesMessageTooLargeWithoutAllocating) {
  auto [rd, wr] = Pipe();
  Child child([&] {
    rd.close();
    write_raw(wr.fileno(), forged_header(std::uint64_t{1} << 50) + "tail");
  });
  wr.close();
  EXPECT_EQ(child.wait_exit(), 0);
  try {
    rd.recv_bytes();
    ADD_FAILURE() << "a forged header was accepted";
  } catch (const ipckit::MessageTooLarge& e) {
    EXPECT_EQ(e.object(), rd.label());
    EXPECT_NE(std::string(e.what()).find("1125899906842624 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rd.recv<int>(), ipckit::DecodeError);  // the framing is lost: no guessing
}

// A length under max_message that the peer never sends costs only what it
// does send: the buffer grows with the bytes that arrive.
TEST(Pipe, AnAnnouncedLengthIsNotAllocatedBeforeItsBytesArrive) {
  auto [rd, wr] = Pipe();
  Child sender([&] {
    rd.close();
    write_raw(wr.fileno(), forged_header(std::uint64_t{900} << 20) + pattern(std::size_t{1} << 20, 5));
  });
  Child receiver([&] {
    wr.close();
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    EXPECT_THROW(rd.recv_bytes(), ipckit::Closed);
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB grown";
  });
  rd.close();
  wr.close();
  EXPECT_EQ(sender.wait_exit(), 0);
  EXPECT_EQ(receiver.wait_exit(), 0);
}

TEST(Pipe, BytesThatAreNotAFrameGiveDecodeError) {
  auto [rd, wr] = Pipe(false);
  write_raw(wr.fileno(), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_THROW(rd.recv_bytes(), ipckit::DecodeError);
  wr.send(1);
  try {
    rd.recv<int>();
    ADD_FAILURE() << "a stream that lost its framing was read on";
  } catch (const ipckit::DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("not an ipckit message"), std::string::npos) << e.what();
  }
}

// A whole message that does not decode as T is dropped; the stream goes on.
TEST(Pipe, AMessageThatDoesNotDecodeIsDroppedAndTheNextArrives) {
  auto [a, b] = Pipe();
  b.send_bytes("abc");       // 3 bytes: no int
  b.send_bytes("abcd");      // no Job: cereal runs out of bytes
  b.send(std::string("x"));  // 9 bytes: no Point
  b.send(42);
  EXPECT_THROW(a.recv<int>(), ipckit::DecodeError);
  try {
    a.recv<Job>();
    ADD_FAILURE() << "garbage decoded as a Job";
  } catch (const ipckit::DecodeError& e) {
    EXPECT_EQ(e.object(), a.label());
    EXPECT_NE(std::string(e.what()).find("it was dropped"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.recv<Point>(), ipckit::DecodeError);
  EXPECT_EQ(a.recv<int>(), 42);
}

TEST(Pipe, RecvBytesWithAMaximumLeavesALongerMessageInLine) {
  auto [a, b] = Pipe();
  b.send_bytes(pattern(100, 6));
  EXPECT_THROW(a.recv_bytes(std::size_t{99}), ipckit::MessageTooLarge);
  EXPECT_THROW(a.recv_bytes(std::size_t{10}), ipckit::MessageTooLarge);
  EXPECT_EQ(a.recv_bytes(std::size_t{100}), pattern(100, 6));
}

TEST(Pipe, MessagesOverMaxMessageAreRefusedBeforeAnythingIsSent) {
  auto [a, b] = Pipe(true, {.name = "small", .max_message = 1000});
  EXPECT_EQ(a.max_message(), 1000u);
  EXPECT_THROW(b.send_bytes(pattern(1001, 7)), ipckit::MessageTooLarge);
  EXPECT_THROW(b.send(std::vector<std::int64_t>(200)), ipckit::MessageTooLarge);
  b.send_bytes(pattern(1000, 7));
  EXPECT_EQ(a.recv_bytes(), pattern(1000, 7));  // nothing of the refused ones came before it
  // A receiver with a smaller limit than its sender's refuses the header.
  a.set_max_message(10);
  b.send_bytes(pattern(11, 8));
  EXPECT_THROW(a.recv_bytes(), ipckit::MessageTooLarge);
  EXPECT_THROW(a.set_max_message(0), ipckit::InvalidArgument);
  EXPECT_THROW((void)Pipe(true, {.max_message = 0}), ipckit::InvalidArgument);
}

// Sending to a gone peer throws Closed and never raises SIGPIPE (a process
// killed by it would exit with -SIGPIPE here).
TEST(Pipe, SendingToAGonePeerThrowsClosedWithoutSigpipe) {
  for (const bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    Child sender([&] {
      auto [rd, wr] = Pipe(duplex);
      rd.close();
      EXPECT_THROW(wr.send(1), ipckit::Closed);
      EXPECT_THROW(wr.send_bytes(pattern(std::size_t{4} << 20, 9)), ipckit::Closed);
      try {
        wr.send_bytes("x");
      } catch (const ipckit::Closed& e) {
        EXPECT_EQ(e.object(), wr.label());
        EXPECT_NE(std::string(e.what()).find("peer is gone"), std::string::npos) << e.what();
      }
      // No SIGPIPE left pending, and the signal mask is as it was.
      sigset_t set;
      sigpending(&set);
      EXPECT_FALSE(sigismember(&set, SIGPIPE));
      pthread_sigmask(SIG_BLOCK, nullptr, &set);
      EXPECT_FALSE(sigismember(&set, SIGPIPE));
    });
    EXPECT_EQ(sender.wait_exit(), 0);
  }
}

// The peer dies while this process is blocked sending it a large message.
TEST(Pipe, ASendBlockedOnAPeerThatIsKilledThrowsClosed) {
  for (const bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "duplex" : "one-way");
    auto [rd, wr] = Pipe(duplex);
    Signal sending;
    Child receiver([&] {
      wr.close();
      std::this_thread::sleep_for(30s);  // killed long before; never reads
    });
    Child sender([&] {
      rd.close();
      sending.post();
      EXPECT_THROW(wr.send_bytes(pattern(std::size_t{32} << 20, 10)), ipckit::Closed);
    });
    rd.close();
    wr.close();
    ASSERT_TRUE(sending.wait());
    // Killing it before the sender blocks would pass too (EPIPE at once);
    // waiting for the sender to sleep makes it the mid-send case.
    EXPECT_TRUE(ipckit::testing::eventually([&] { return proc_state(sender.pid()) == 'S'; }));
    receiver.kill();
    EXPECT_EQ(sender.wait_exit(), 0);
  }
}

// A program that blocks SIGPIPE and has one pending keeps it.
TEST(Pipe, APendingSigpipeOfTheProgramIsNotSwallowed) {
  Child child([&] {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    ::raise(SIGPIPE);
    auto [rd, wr] = Pipe(false);
    rd.close();
    EXPECT_THROW(wr.send(1), ipckit::Closed);
    sigset_t pending;
    sigpending(&pending);
    EXPECT_TRUE(sigismember(&pending, SIGPIPE));
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

// CPython's test_duplex_false.
TEST(Pipe, AOneWayPipeRejectsTheWrongDirection) {
  auto [reader, writer] = Pipe(false);
  writer.send(1);
  EXPECT_EQ(reader.recv<int>(), 1);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_FALSE(writer.readable());
  EXPECT_TRUE(writer.writable());
  try {
    reader.send(2);
    ADD_FAILURE() << "sent on the receive-only end";
  } catch (const ipckit::InvalidArgument& e) {
    EXPECT_EQ(e.object(), reader.label());
    EXPECT_NE(std::string(e.what()).find("receive-only end"), std::string::npos) << e.what();
  }
  EXPECT_THROW(reader.send_bytes("x"), ipckit::InvalidArgument);
  EXPECT_THROW(writer.recv<int>(), ipckit::InvalidArgument);
  EXPECT_THROW(writer.recv_bytes(), ipckit::InvalidArgument);
  EXPECT_THROW(writer.try_recv<int>(), ipckit::InvalidArgument);
  EXPECT_THROW(writer.poll(), ipckit::InvalidArgument);
  EXPECT_THROW(writer.poll(1ms), ipckit::InvalidArgument);
}

TEST(Pipe, AClosedEndRejectsEveryCallAndCloseRepeats) {
  auto [a, b] = Pipe();
  EXPECT_FALSE(a.closed());
  a.close();
  EXPECT_TRUE(a.closed());
  a.close();
  EXPECT_TRUE(a.readable());  // as Python's properties
  try {
    a.send(1);
    ADD_FAILURE() << "sent on a closed end";
  } catch (const ipckit::InvalidArgument& e) {
    EXPECT_EQ(e.object(), a.label());
    EXPECT_NE(std::string(e.what()).find("closed connection"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.recv<int>(), ipckit::InvalidArgument);
  EXPECT_THROW(a.try_recv_bytes(), ipckit::InvalidArgument);
  EXPECT_THROW(a.poll(), ipckit::InvalidArgument);
  EXPECT_THROW((void)a.fileno(), ipckit::InvalidArgument);
  EXPECT_THROW(b.recv<int>(), ipckit::Closed);  // its peer
  Connection moved = std::move(b);
  EXPECT_TRUE(b.closed());  // NOLINT(bugprone-use-after-move): a moved-from end is closed
  EXPECT_THROW(b.send(1), ipckit::InvalidArgument);
  EXPECT_FALSE(moved.closed());
}

TEST(Pipe, EndsAreNamedCloseOnExecAndPollableByTheirDescriptor) {
  auto [a, b] = Pipe(true, {.name = "jobs"});
  EXPECT_EQ(a.label(), "jobs[0]");
  EXPECT_EQ(b.label(), "jobs[1]");
  auto [c, d] = Pipe(false);
  EXPECT_EQ(c.label().rfind("Pipe-", 0), 0u);
  EXPECT_EQ(c.label().substr(c.label().size() - 3), "[0]");
  for (const Connection* end : {&a, &b, &c, &d}) EXPECT_TRUE(::fcntl(end->fileno(), F_GETFD) & FD_CLOEXEC);
  b.send(1);
  pollfd p{a.fileno(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1);
  EXPECT_EQ(a.recv<int>(), 1);
}

namespace {
std::atomic<int> interrupts{0};
void count_interrupt(int) { interrupts.fetch_add(1); }
}  // namespace

// Signals without SA_RESTART interrupt the system calls (EINTR): receives
// and polls go on, timed ones with the time left.
TEST(Pipe, ReceivesAndPollsGoOnAcrossInterruptingSignals) {
  auto [a, b] = Pipe();
  Signal ready;
  Child child([&] {
    b.close();
    struct sigaction sa {};
    sa.sa_handler = count_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART
    sigaction(SIGUSR1, &sa, nullptr);
    ready.post();
    EXPECT_FALSE(a.poll(300ms));
    EXPECT_EQ(a.recv<int>(), 7);
    EXPECT_EQ(a.recv<int>(20s), 8);
    EXPECT_GT(interrupts.load(), 0);
  });
  a.close();
  ASSERT_TRUE(ready.wait());
  for (int i = 0; i < 40; ++i) {
    child.kill(SIGUSR1);
    std::this_thread::sleep_for(10ms);  // pacing the signals, not synchronising
  }
  b.send(7);
  for (int i = 0; i < 10; ++i) {
    child.kill(SIGUSR1);
    std::this_thread::sleep_for(10ms);
  }
  b.send(8);
  EXPECT_EQ(child.wait_exit(), 0);
}
