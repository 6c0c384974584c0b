// async_echo — request and reply between two processes through two ipckit
// queues, with Boost.Asio coroutines on both ends:
//
//   client (this process)                      server (an ipckit::Process)
//   co_await requests.async_put(req)   --->    req = co_await requests.async_get()
//   rep = co_await replies.async_get() <---    co_await replies.async_put(echo(req))
//
// Each side runs one io_context on one thread; neither thread blocks inside
// ipckit, so either loop could serve sockets and timers beside the queues.
// The client round-trips N messages one at a time, checks that each reply
// answers its own request (same number, the text upper-cased by the server),
// then closes the requests queue: the server's pending async_get completes
// with ipckit::Closed, and the server coroutine ends. It prints the median
// round trip (and p99): the cost of a request and a reply, each crossing
// the processes and waking an event loop.
//
// The claim it checks (it runs as a test): all N replies arrived and matched
// their requests, the server ended through Closed having answered exactly N,
// all before a deadline. Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <ipckit/asio.hpp>
#include <ipckit/ipckit.hpp>
#include <string>
#include <vector>

#include "demo.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// One message either way: a number and a short text (a plain struct: the
// queue copies its bytes, no serialization).
struct Message {
  std::int64_t seq = 0;
  std::array<char, 48> text{};
};

Message make_request(std::int64_t seq) {
  Message m{seq, {}};
  std::snprintf(m.text.data(), m.text.size(), "hello #%lld", static_cast<long long>(seq));
  return m;
}

// What the server answers: the same number, the text upper-cased.
Message echo(Message m) {
  for (char& c : m.text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return m;
}

// Runs `coro` on a fresh io_context until it ends or `timeout` passes;
// returns "" when it ended, else what it threw or "deadline passed".
template <class Coro>
std::string run_loop(Coro coro, std::chrono::seconds timeout) {
  asio::io_context io(1);
  std::string error = "no completion";
  asio::steady_timer deadline(io, timeout);  // a lost wake-up fails, never hangs
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) error = "deadline passed", io.stop();
  });
  asio::co_spawn(io, std::move(coro), [&](std::exception_ptr e) {
    error.clear();
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        error = x.what();
      }
    }
    deadline.cancel();
  });
  io.run();
  return error;
}

// The server: answer every request until the queue is closed.
awaitable<void> serve(ipckit::Queue<Message>& requests, ipckit::Queue<Message>& replies, std::int64_t& answered) {
  try {
    for (;;) {
      const Message req = co_await requests.async_get(use_awaitable);
      co_await replies.async_put(echo(req), use_awaitable);
      ++answered;
    }
  } catch (const ipckit::Closed&) {
    // The client is done: the normal end.
  }
}

struct ClientResult {
  int matched = 0;
  std::vector<double> round_trip_us;
};

// The client: N round trips, one at a time, each timed.
awaitable<void> client(ipckit::Queue<Message>& requests, ipckit::Queue<Message>& replies, int n, int show,
                       ClientResult& out) {
  for (int i = 0; i < n; ++i) {
    const Message req = make_request(i);
    const auto t = demo::Clock::now();
    co_await requests.async_put(req, use_awaitable);
    const Message rep = co_await replies.async_get(use_awaitable);
    out.round_trip_us.push_back(std::chrono::duration<double, std::micro>(demo::Clock::now() - t).count());
    const bool ok = rep.seq == req.seq && rep.text == echo(req).text;
    out.matched += ok ? 1 : 0;
    if (i < show || !ok)
      demo::say("client: sent '%s' -> got '%s'%s\n", req.text.data(), rep.text.data(), ok ? "" : "  MISMATCH");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"async_echo — request/reply through two ipckit queues, coroutines on both ends"};
  int messages = 2000, show = 3, timeout_s = 30;
  app.add_option("-n,--messages", messages, "round trips")->check(CLI::Range(1, 10'000'000));
  app.add_option("--show", show, "round trips printed (the rest are counted)")->check(CLI::Range(0, 10'000'000));
  app.add_option("--timeout-s", timeout_s, "give up (and fail) if not all done by then")->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  demo::Verdict verdict;

  const std::string name = "demo-async-echo-" + std::to_string(::getpid());
  auto seg = ipckit::Segment::create(name, std::size_t{4} << 20);
  ipckit::SegmentRemover remove(name);
  auto requests = seg.queue<Message>("requests", {.capacity_bytes = 64 << 10});
  auto replies = seg.queue<Message>("replies", {.capacity_bytes = 64 << 10});
  auto answered = seg.value<std::int64_t>("answered", 0);  // the server's count, for the parent to check
  const auto timeout = std::chrono::seconds(timeout_s);

  ipckit::Process server(
      [&] {
        std::int64_t n = 0;
        const std::string error = run_loop(serve(requests, replies, n), timeout);
        answered.set(n);
        demo::say("server: answered %lld requests, then the queue was closed%s%s\n", static_cast<long long>(n),
                  error.empty() ? "" : "; FAILED: ", error.c_str());
        if (!error.empty()) throw std::runtime_error(error);
      },
      {.name = "echo-server", .daemon = true});
  server.start();

  ClientResult result;
  const std::string error = run_loop(client(requests, replies, messages, show, result), timeout);
  if (!error.empty()) demo::say("FAILED: client: %s\n", error.c_str());
  requests.close();  // the server's async_get now completes with Closed
  const bool server_ended = server.join(timeout);
  if (!server_ended) server.kill(), server.join();

  auto& rt = result.round_trip_us;
  std::sort(rt.begin(), rt.end());
  if (!rt.empty())
    demo::say("client: %d round trips, %d matched; round trip median %.1f us, p99 %.1f us\n",
              static_cast<int>(rt.size()), result.matched, rt[rt.size() / 2], rt[rt.size() * 99 / 100]);
  verdict.expect(error.empty(), "the client's coroutine completed");
  verdict.expect(result.matched == messages, "every reply arrived and answered its own request");
  verdict.expect(server_ended && server.exitcode() == 0, "the server ended cleanly through Closed");
  verdict.expect(answered.get() == messages, "the server answered exactly N requests");
  return verdict.finish();
}
