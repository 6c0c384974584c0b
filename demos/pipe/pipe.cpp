// pipe — a parent and a child process talk over ipckit::Pipe(), Python's
// multiprocessing.Pipe().
//
// The seed sends `obj = {'a': 1, 'b': 2}` through pickle and a Queue; here
// the same dict goes to a child over a Pipe, the Python way:
//
//   parent_conn, child_conn = Pipe()
//   p = Process(target=child, args=(child_conn,)); p.start(); child_conn.close()
//   parent_conn.send({'a': 1, 'b': 2})         # child: obj = conn.recv()
//   print(parent_conn.recv())                  # child: conn.send({k: v * 10 ...})
//
// then `--rounds` ping-pongs (a number sent, the number + 1 back: the round
// trip time), and a `--bytes` payload echoed back with send_bytes/recv_bytes.
// The child then returns; the parent's next recv() throws ipckit::Closed,
// Python's EOFError. `--one-way` uses two Pipe(false), one per direction.
//
// The claim it checks (it runs as a test): the reply is the dict times ten,
// every ping came back + 1, the payload came back intact, the child exited
// with 0 and the parent's recv() after that threw Closed. Exit code 0 when
// so, 1 otherwise.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <map>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;
using Dict = std::map<std::string, int>;

namespace {

std::string show(const Dict& d) {
  std::string s = "{";
  for (const auto& [k, v] : d) s += (s.size() > 1 ? ", '" : "'") + k + "': " + std::to_string(v);
  return s + "}";
}

std::string payload(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131) ^ (i >> 9));
  return s;
}

// What the child does with its ends: Python's `def child(conn)`.
void child(ipckit::Connection& in, ipckit::Connection& out, int rounds) {
  const auto obj = in.recv<Dict>();
  Dict reply;
  for (const auto& [k, v] : obj) reply[k] = v * 10;
  std::printf("child  got  %s, replies %s\n", show(obj).c_str(), show(reply).c_str());
  std::fflush(stdout);
  out.send(reply);
  for (int i = 0; i < rounds; ++i) out.send(in.recv<std::int64_t>() + 1);
  out.send_bytes(in.recv_bytes());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A parent and a child process exchanging objects and bytes over an ipckit::Pipe"};
  int rounds = 1000;
  std::size_t bytes = std::size_t{8} << 20;
  bool one_way = false;
  app.add_option("-r,--rounds", rounds, "ping-pong round trips")->check(CLI::Range(0, 10'000'000));
  app.add_option("-b,--bytes", bytes, "size of the payload echoed back")->check(CLI::Range(0, 512 << 20));
  app.add_flag("--one-way", one_way, "two one-way Pipe(false), one per direction, instead of one duplex Pipe()");
  CLI11_PARSE(app, argc, argv);

  try {
    // Duplex: each process uses one end of the same pair. One-way: the parent
    // sends on `down` and receives on `up`; the child the other way round.
    auto [down_r, down_w] = ipckit::Pipe(!one_way, {.name = "down"});
    auto [up_r, up_w] = ipckit::Pipe(!one_way, {.name = "up"});
    ipckit::Connection& parent_out = one_way ? down_w : down_r;
    ipckit::Connection& parent_in = one_way ? up_r : down_r;
    ipckit::Connection& child_in = one_way ? down_r : down_w;
    ipckit::Connection& child_out = one_way ? up_w : down_w;
    if (!one_way) {  // the second pair is not used
      up_r.close();
      up_w.close();
    }

    ipckit::Process p(
        [&] {
          parent_out.close();  // each process closes the ends it does not use,
          parent_in.close();   // or the other would never see EOF
          child(child_in, child_out, rounds);
        },
        {.name = "child"});
    p.start();
    child_in.close();
    child_out.close();

    const Dict obj{{"a", 1}, {"b", 2}};
    std::printf("parent sends %s over %s\n", show(obj).c_str(), one_way ? "two Pipe(false)" : "a Pipe()");
    std::fflush(stdout);
    parent_out.send(obj);
    const auto reply = parent_in.recv<Dict>();
    std::printf("parent got  %s\n", show(reply).c_str());
    bool ok = reply == Dict{{"a", 10}, {"b", 20}};

    std::vector<double> trips;
    trips.reserve(static_cast<std::size_t>(rounds));
    for (std::int64_t i = 0; i < rounds; ++i) {
      const auto t0 = Clock::now();
      parent_out.send(i);
      ok = ok && parent_in.recv<std::int64_t>() == i + 1;
      trips.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    if (!trips.empty()) {
      std::sort(trips.begin(), trips.end());
      std::printf("%d round trips: median %.1f us, 99th percentile %.1f us\n", rounds, trips[trips.size() / 2],
                  trips[trips.size() * 99 / 100]);
    }

    const std::string sent = payload(bytes);
    const auto t0 = Clock::now();
    parent_out.send_bytes(sent);
    const bool intact = parent_in.recv_bytes() == sent;
    std::printf("a payload of %zu bytes came back %s in %.3f s\n", bytes, intact ? "intact" : "CHANGED",
                std::chrono::duration<double>(Clock::now() - t0).count());
    ok = ok && intact;

    p.join();
    std::printf("child ended with exit code %d\n", p.exitcode().value_or(-1));
    ok = ok && p.exitcode() == 0;
    try {
      (void)parent_in.recv<Dict>();
      std::printf("FAILED: recv() after the child ended returned\n");
      ok = false;
    } catch (const ipckit::Closed& e) {
      std::printf("parent recv() now throws Closed (Python's EOFError): %s\n", e.what());
    }
    if (!ok) std::printf("FAILED: a reply was wrong (see above)\n");
    return ok ? 0 : 1;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "pipe: %s\n", e.what());
    return 1;
  }
}
