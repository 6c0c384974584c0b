// producer_consumer — serialized objects through an ipckit::Queue, between processes.
//
// The seed's "pickle + Queue" pattern:
//
//   obj = {'a': 1, 'b': 2}
//   q.put(pickle.dumps(obj))
//   received_obj = pickle.loads(q.get())
//
// with cereal doing the pickling and processes instead of threads. Each
// producer process puts the seed's dict (a std::map<std::string, int>) and
// then `Order` structs (an id, a customer name, a list of items, a total);
// consumer processes get them, decode them and print them.
//
// Before that, a deliberately small queue (two items) shows `put_nowait` on a
// full queue throwing ipckit::Full, and `get_nowait` making room again. At the
// end the main process closes the queue: the consumers drain what is left,
// then their get() throws ipckit::Closed and they end; a put after close()
// throws Closed too.
//
// The claim it checks (it runs as a test): every message was consumed exactly
// once (a per-message "seen" counter in a shared Array), arrived intact (each
// consumer rebuilds what the producer must have sent and compares), each
// consumer got each producer's messages in the order they were put, every
// consumer ended through Closed, and every process ended cleanly before a
// deadline. Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <map>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A user struct: cereal serializes anything with a serialize() member.
struct Order {
  std::int32_t id = 0;
  std::string customer;
  std::vector<std::string> items;
  double total = 0;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, customer, items, total);
  }
  bool operator==(const Order&) const = default;
};

using Dict = std::map<std::string, int>;  // the seed's {'a': 1, 'b': 2}

// What travels through the queue: who sent it, its place in that producer's
// sequence, and either kind of object.
struct Message {
  std::int32_t producer = 0;  // 0-based
  std::int32_t seq = 0;       // 0-based, per producer
  std::variant<Dict, Order> body;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(producer, seq, body);
  }
};

// Producers build their messages from (producer, seq) alone, so a consumer can
// rebuild the expected message and check that what it decoded is identical.
Message make_message(int producer, int seq) {
  if (seq == 0) return {producer, seq, Dict{{"a", 1}, {"b", 2}}};
  static const char* const customers[] = {"alice", "bob", "carol", "dave", "erin"};
  static const char* const goods[] = {"apple", "bread", "cheese", "dates", "eggs", "figs", "grapes"};
  static const double prices[] = {0.5, 2.25, 7.0, 3.1, 1.75, 4.4, 2.9};
  Order o;
  o.id = (producer + 1) * 1000 + seq;
  o.customer = customers[(producer + seq) % 5];
  for (int k = 0; k < 1 + seq % 3; ++k) {
    const int g = (seq * 3 + k + producer) % 7;
    o.items.emplace_back(goods[g]);
    o.total += prices[g];
  }
  return {producer, seq, o};
}

std::string describe(const Message& m) {
  if (const auto* d = std::get_if<Dict>(&m.body)) {
    std::string s = "{";
    for (const auto& [k, v] : *d) s += (s.size() > 1 ? ", '" : "'") + k + "': " + std::to_string(v);
    return s + "}";
  }
  const auto& o = std::get<Order>(m.body);
  std::string items;
  for (const auto& i : o.items) items += (items.empty() ? "" : ", ") + i;
  char buf[256];
  std::snprintf(buf, sizeof buf, "Order #%d %s [%s] total %.2f", o.id, o.customer.c_str(), items.c_str(), o.total);
  return buf;
}

bool same_body(const Message& a, const Message& b) { return a.body == b.body; }

// Act 1: put_nowait on a full queue throws Full; get_nowait makes room.
bool show_full(ipckit::Segment& seg) {
  auto small = seg.queue<Order>("small", {.capacity_bytes = 4096, .max_items = 2});
  const Order o = std::get<Order>(make_message(0, 1).body);
  std::printf("a small queue (2 items): put_nowait, put_nowait, put_nowait...\n");
  small.put_nowait(o);
  small.put_nowait(o);
  bool threw = false;
  try {
    small.put_nowait(o);
  } catch (const ipckit::Full& e) {
    threw = true;
    std::printf("  3rd put_nowait -> ipckit::Full: %s\n", e.what());
  }
  if (!threw) {
    std::printf("  FAILED: the 3rd put_nowait on a queue of 2 items did not throw Full\n");
    return false;
  }
  const Order back = small.get_nowait();
  small.put_nowait(o);
  std::printf("  get_nowait -> Order #%d; now put_nowait fits again (qsize %zu, full() %s)\n\n", back.id, small.qsize(),
              small.full() ? "true" : "false");
  return back == o && small.qsize() == 2 && small.full();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Producer and consumer processes passing cereal-serialized objects through an ipckit Queue"};
  int producers = 2, consumers = 3, items = 5, show = 8, work_us = 20000, timeout_s = 30;
  std::size_t capacity = 2048;
  app.add_option("-p,--producers", producers, "producer processes")->check(CLI::Range(1, 64));
  app.add_option("-c,--consumers", consumers, "consumer processes")->check(CLI::Range(1, 64));
  app.add_option("-n,--items", items, "messages per producer: the seed's dict, then Orders")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--capacity-bytes", capacity, "the queue's capacity in bytes (small: producers wait for room)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  app.add_option("--work-us", work_us, "time a consumer spends on each message (so close() finds some queued)")
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--show", show, "messages each consumer prints (the rest are counted)")
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--timeout-s", timeout_s, "give up (and fail) if the processes have not ended by then")
      ->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines from each process

  const std::string name = "demo-producer-consumer-" + std::to_string(::getpid());
  const int total = producers * items;
  try {
    auto seg = ipckit::Segment::create(name, (2 << 20) + capacity + std::size_t(total) * 4);
    ipckit::SegmentRemover remove(name);

    if (!show_full(seg)) return 1;

    auto q = seg.queue<Message>("messages", {.capacity_bytes = capacity});
    auto seen = seg.array<std::int32_t>("seen", total);              // per message: times consumed
    auto got = seg.array<std::int64_t>("got", consumers);            // per consumer: messages taken
    auto bad = seg.array<std::int64_t>("bad", consumers);            // per consumer: not what was sent
    auto disorder = seg.array<std::int64_t>("disorder", consumers);  // per consumer: out of producer order
    auto closed = seg.array<std::int32_t>("closed", consumers);      // per consumer: ended by Closed
    auto waits = seg.array<std::int64_t>("waits", producers);        // per producer: found the queue full

    std::vector<ipckit::Process> cons;
    for (int c = 0; c < consumers; ++c) {
      const std::string me = "consumer-" + std::to_string(c + 1);
      cons.emplace_back(
          [&, c, me] {
            std::vector<int> last(producers, -1);
            std::int64_t mine = 0, wrong = 0, late = 0;
            for (;;) {
              Message m;
              try {
                m = q.get();  // blocks while empty; Closed once closed and drained
              } catch (const ipckit::Closed&) {
                closed[c] = 1;
                break;
              }
              ++mine;
              if (m.producer < 0 || m.producer >= producers || m.seq < 0 || m.seq >= items) {
                ++wrong;
                continue;
              }
              if (!same_body(m, make_message(m.producer, m.seq))) ++wrong;
              if (m.seq <= last[m.producer]) ++late;
              last[m.producer] = m.seq;
              std::atomic_ref<std::int32_t>(seen[std::size_t(m.producer) * items + m.seq]).fetch_add(1);
              if (mine <= show)
                std::printf("%-11s got %s from producer-%d\n", me.c_str(), describe(m).c_str(), m.producer + 1);
              if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
            }
            got[c] = mine;
            bad[c] = wrong;
            disorder[c] = late;
          },
          ipckit::ProcessOptions{.name = me, .daemon = true});
      cons.back().start();
    }

    std::vector<ipckit::Process> prods;
    for (int p = 0; p < producers; ++p) {
      prods.emplace_back(
          [&, p] {
            std::int64_t full = 0;
            for (int seq = 0; seq < items; ++seq) {
              const Message m = make_message(p, seq);
              try {
                q.put_nowait(m);
              } catch (const ipckit::Full&) {
                ++full;  // no room right now: wait for a consumer to take something
                q.put(m);
              }
            }
            waits[p] = full;
          },
          ipckit::ProcessOptions{.name = "producer-" + std::to_string(p + 1), .daemon = true});
      prods.back().start();
    }

    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::seconds(timeout_s);
    auto left = [&] { return std::max(deadline - Clock::now(), Clock::duration::zero()); };
    auto give_up = [&](const char* what) {
      std::printf("FAILED: %s still running after %d s (queue holds %zu):", what, timeout_s, q.qsize());
      for (auto* group : {&prods, &cons})
        for (auto& proc : *group)
          if (proc.is_alive()) std::printf(" %s", proc.name().c_str());
      std::printf("\n");
      for (auto* group : {&prods, &cons})
        for (auto& proc : *group) proc.kill();
      for (auto* group : {&prods, &cons})
        for (auto& proc : *group) proc.join();
      return 1;
    };

    bool hung = false;
    for (auto& p : prods) hung |= !p.join(left());
    if (hung) return give_up("producers");

    // Every put has returned: close. The consumers drain what is left, then get Closed.
    const std::size_t left_in_queue = q.qsize();
    q.close();
    bool put_closed = false;
    try {
      q.put(make_message(0, 0), 1s);  // timed: a broken close() must fail the demo, not hang it
    } catch (const ipckit::Full&) {
    } catch (const ipckit::Closed& e) {
      put_closed = true;
      std::printf("main: closed the queue with %zu message(s) still in it; a put now -> ipckit::Closed: %s\n",
                  left_in_queue, e.what());
    }

    for (auto& c : cons) hung |= !c.join(left());
    if (hung) return give_up("consumers");
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

    // Verify.
    bool ok = put_closed;
    if (!put_closed) std::printf("FAILED: a put after close() did not throw Closed\n");
    std::printf("\n");
    for (int p = 0; p < producers; ++p) {
      ok = ok && prods[p].exitcode() == 0;
      std::printf("producer-%d put %d messages (found the queue full %lld time(s) and waited)%s\n", p + 1, items,
                  static_cast<long long>(waits[p]), prods[p].exitcode() == 0 ? "" : "  <- did not end cleanly");
    }
    std::int64_t taken = 0, wrong = 0, late = 0;
    int not_closed = 0;
    for (int c = 0; c < consumers; ++c) {
      ok = ok && cons[c].exitcode() == 0;
      taken += got[c];
      wrong += bad[c];
      late += disorder[c];
      not_closed += closed[c] == 0;
      std::printf("consumer-%d got %lld messages, then Closed%s\n", c + 1, static_cast<long long>(got[c]),
                  cons[c].exitcode() == 0 && closed[c] ? "" : "  <- did not end cleanly");
    }
    int missing = 0, doubled = 0;
    for (int i = 0; i < total; ++i) {
      missing += seen[i] == 0;
      doubled += seen[i] > 1;
    }
    std::printf("%lld messages in %.3f s\n", static_cast<long long>(taken), secs);

    if (!ok || not_closed) std::printf("FAILED: a process did not end cleanly (or a consumer did not see Closed)\n");
    const bool exact = missing == 0 && doubled == 0 && taken == total;
    if (!exact)
      std::printf("FAILED: %d messages never consumed, %d consumed more than once (%lld taken for %d put)\n", missing,
                  doubled, static_cast<long long>(taken), total);
    if (wrong) std::printf("FAILED: %lld messages did not decode to what was sent\n", static_cast<long long>(wrong));
    if (late)
      std::printf("FAILED: %lld messages reached a consumer after a later one from the same producer\n",
                  static_cast<long long>(late));
    if (!ok || not_closed || !exact || wrong || late) return 1;
    std::printf(
        "every message consumed exactly once, intact, in each producer's order; close() ended all %d "
        "consumers\n",
        consumers);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "producer_consumer: %s\n", e.what());
    return 1;
  }
}
