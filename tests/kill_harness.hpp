// tests/kill_harness.hpp — producers and consumers SIGKILLed at random
// instants inside put() and get(), for any queue of Stamped items.
//
// A KillRun keeps the books of such a run in the segment and runs its
// processes: kProducers producer slots and kConsumers consumer slots, each
// refilled with a new process after every kill. A new producer carries on
// from the last sequence number its predecessor attempted, so every
// (producer, seq) is put at most once. The test supplies the queue calls:
//
//   put(const Stamped& item, timeout...)
//       puts `item`; blocking without a timeout, a timed put throws Full;
//   get_and_take(std::vector<std::int64_t>& last, timeout...)
//       gets one item (blocking without a timeout, a timed get throws
//       Empty), enters it with record(item, last, ...) and does the test's
//       own checks and acknowledgements (e.g. task_done).
//
// Producer slot 0 and even consumer slots use the blocking calls, the others
// the timed ones (a put that throws Full put nothing: it is retried). Then:
//
//   run.kill_at_random(put, get_and_take);  // start every slot, `kills` kills
//   ... run.kill_for_good(slot, patience) for each slot, in the test's order
//       (kill_everyone_for_good(patience): in a random order) ...
//   if (!run.drain(get_and_take)) return;
//   run.check_books();
//
// check_books() checks what holds for any queue:
//  - every item whose put() returned arrived exactly once; the one item a
//    killed producer was putting (its put may or may not have returned)
//    arrived at most once; nothing that was never put arrived;
//  - no item arrived twice and none was garbage (every item carries a check
//    of its contents); each getter saw each producer's items of one order
//    class in put order; no getter met an unexpected exception or an item
//    that did not decode, and the test's own faults stayed at zero;
//  - an item may be missing from the books only because a consumer was
//    killed after its get() returned and before it entered the item: there
//    are at most as many such items as consumer kills.
// That the queue never wedged is checked on the way: each victim of the
// random phase must make progress within 10 s (while everybody else runs,
// its operations need only the others': producers need room, consumers
// items), and the drain must finish within 20 s.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"

namespace ipckit::testing {

struct KillRunOptions {
  unsigned seed = 0;            // of the choice of victims and instants
  int kills = 0;                // in the random phase, each followed by a respawn
  std::uint32_t max_seq = 0;    // per producer: far beyond what a run puts
  int max_ops_before_kill = 0;  // a victim is killed 1 to this many operations after its spawn
  std::size_t pad_unit = 1;     // of the items: see make_stamped
  // Per producer, the classes of items that must each come out in put order
  // (1 for a FIFO; one per priority for a priority queue).
  std::size_t order_classes = 1;
  std::vector<std::string> own_faults;  // names of the test's faults, numbered from kOwnFault
};

class KillRun {
 public:
  static constexpr std::uint32_t kProducers = 2;
  static constexpr int kConsumers = 2;
  static constexpr int kSlots = static_cast<int>(kProducers) + kConsumers;  // producers first
  enum Fault : int { kGarbage, kNeverPut, kOutOfOrder, kTwice, kDecode, kUnexpected, kOwnFault };

  KillRun(Segment& seg, KillRunOptions options)
      : seg_(seg),
        o_(std::move(options)),
        received_(seg.array<std::uint8_t>("received", std::size_t{kProducers} * o_.max_seq)),
        attempting_(seg.array<std::int64_t>("attempting", kProducers)),  // seq of the put under way
        returned_(seg.array<std::int64_t>("returned", kProducers)),      // seq of the last put that returned
        progress_(seg.array<std::int64_t>("progress", kSlots)),          // operations done, per slot
        faults_(seg.array<std::int64_t>("faults", kOwnFault + o_.own_faults.size())),
        kids_(kSlots),
        progress_at_spawn_(kSlots),
        rng_(o_.seed) {
    for (std::uint32_t p = 0; p < kProducers; ++p) attempting_[p] = returned_[p] = -1;
  }

  [[nodiscard]] std::uint32_t max_seq() const { return o_.max_seq; }
  [[nodiscard]] Stamped item(std::uint32_t producer, std::uint32_t seq) const {
    return make_stamped(producer, seq, o_.pad_unit);
  }
  [[nodiscard]] bool intact(const Stamped& s) const {
    return ipckit::testing::intact(s, kProducers, o_.pad_unit) && s.seq < o_.max_seq;
  }
  void fault(int f) { at(faults_[static_cast<std::size_t>(f)]).fetch_add(1); }

  // Enters an item a getter got: a fault if it is garbage (then it is not
  // entered: returns false), was never put, comes out of put order (`last`
  // holds the getter's last seq per producer and order class) or twice.
  bool record(const Stamped& s, std::vector<std::int64_t>& last, std::size_t order_class = 0) {
    if (!intact(s)) {
      fault(kGarbage);
      return false;
    }
    if (static_cast<std::int64_t>(s.seq) > at(attempting_[s.producer]).load()) fault(kNeverPut);
    auto& l = last[s.producer * o_.order_classes + order_class];
    if (static_cast<std::int64_t>(s.seq) <= l) fault(kOutOfOrder);
    l = s.seq;
    if (at(received_[std::size_t{s.producer} * o_.max_seq + s.seq]).fetch_add(1) != 0) fault(kTwice);
    return true;
  }

  // Starts every slot, then kills a random victim and refills its slot
  // `kills` times (fewer if a victim made no progress: the test has failed).
  template <class Put, class GetAndTake>
  void kill_at_random(Put put, GetAndTake get_and_take) {
    t0_ = Clock::now();
    auto spawn = [&](int slot) {
      progress_at_spawn_[slot] = at(progress_[slot]).load();
      if (is_producer(slot)) {
        kids_[slot] = std::make_unique<Child>([&, slot] { produce(static_cast<std::uint32_t>(slot), put); });
      } else {
        kids_[slot] = std::make_unique<Child>([&, slot] { consume(slot, get_and_take); });
      }
    };
    for (int slot = 0; slot < kSlots; ++slot) spawn(slot);
    for (int k = 0; k < o_.kills; ++k) {
      const int victim = static_cast<int>(rng_() % kSlots);
      const bool ok = kill(victim, 10000ms, true);
      spawn(victim);
      if (!ok) break;
    }
  }

  // The last round: kills `slot` once it made progress or `patience` passed
  // (it may be blocked for good once the other side is gone), and replaces
  // it by no one.
  void kill_for_good(int slot, std::chrono::milliseconds patience) { (void)kill(slot, patience, false); }
  // kill_for_good for every slot, in a random order: once one side is gone
  // the other may block for good (no room, or no items), and is then killed
  // inside its blocked put or get.
  void kill_everyone_for_good(std::chrono::milliseconds patience) {
    std::vector<int> order(kSlots);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng_);
    for (int victim : order) kill_for_good(victim, patience);
  }

  // Gets what is left with get_and_take(last, 200 ms) until it throws Empty
  // (a timed get, not try_get: a dead holder of the consumers' lock may need
  // taking over). Returns false, failing the test, if that took over 20 s.
  template <class GetAndTake>
  [[nodiscard]] bool drain(GetAndTake get_and_take) {
    kill_phase_ = Clock::now() - t0_;
    std::vector<std::int64_t> last(kProducers * o_.order_classes, -1);
    const auto end = Clock::now() + 20s;
    for (;;) {
      if (Clock::now() >= end) {
        ADD_FAILURE() << "the drain did not finish: the queue wedged";
        return false;
      }
      try {
        get_and_take(last, 200ms);
      } catch (const ipckit::Empty&) {
        return true;
      } catch (const ipckit::DecodeError&) {
        fault(kDecode);
        continue;
      }
      ++drained_;
    }
  }

  // After the drain: the checks listed at the top of this file.
  void check_books() {
    static const char* const kNames[] = {"garbage",         "never put",     "out of put order",
                                         "delivered twice", "decode errors", "unexpected exceptions"};
    for (std::size_t f = 0; f < faults_.size(); ++f)
      EXPECT_EQ(faults_[f], 0) << (f < std::size_t{kOwnFault} ? std::string(kNames[f]) : o_.own_faults[f - kOwnFault]);
    std::int64_t doubled = 0, never_put = 0;
    delivered_ = missing_ = uncertain_arrived_ = 0;
    for (std::uint32_t p = 0; p < kProducers; ++p) {
      const std::int64_t attempted = at(attempting_[p]).load();
      // Every slot's last producer was killed: a put it left under way is
      // among the uncertain ones.
      if (attempted != at(returned_[p]).load()) {
        EXPECT_EQ(uncertain_.count({p, attempted}), 1u) << "producer slot " << p;
      }
      for (std::int64_t s = 0; s < static_cast<std::int64_t>(o_.max_seq); ++s) {
        const int r = received_[std::size_t{p} * o_.max_seq + static_cast<std::size_t>(s)];
        delivered_ += r;
        if (s > attempted) {
          never_put += r != 0;
          continue;
        }
        if (r > 1) ++doubled;
        if (uncertain_.count({p, s}) != 0) {
          uncertain_arrived_ += r == 1;
        } else if (r == 0) {
          ++missing_;
        }
      }
    }
    EXPECT_EQ(doubled, 0);
    EXPECT_EQ(never_put, 0) << "items arrived that were never put";
    EXPECT_LE(missing_, consumer_kills_)
        << "items whose put returned vanished beyond what killed consumers can explain";
  }

  // Whether `f` returns in a new process. (The child reports through a flag:
  // its exit code would also carry this test's earlier failures.)
  template <class F>
  bool returns_in_a_new_process(F f) {
    auto returned = seg_.value<std::int32_t>("returned_in_a_new_process", 0);
    Child child([&] {
      f();
      returned.set(1);
    });
    (void)child.wait_exit();
    return returned.get() == 1;
  }

  void record_properties() const {
    ::testing::Test::RecordProperty("producer_kills", producer_kills_);
    ::testing::Test::RecordProperty("consumer_kills", consumer_kills_);
    ::testing::Test::RecordProperty("delivered", static_cast<int>(delivered_));
    ::testing::Test::RecordProperty("drained", static_cast<int>(drained_));
    ::testing::Test::RecordProperty("missing_after_consumer_kills", static_cast<int>(missing_));
    ::testing::Test::RecordProperty("uncertain_puts", static_cast<int>(uncertain_.size()));
    ::testing::Test::RecordProperty("uncertain_puts_arrived", static_cast<int>(uncertain_arrived_));
    ::testing::Test::RecordProperty(
        "kill_phase_ms", static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kill_phase_).count()));
  }

  static bool is_producer(int slot) { return slot < static_cast<int>(kProducers); }
  std::mt19937& rng() { return rng_; }
  [[nodiscard]] int consumer_kills() const { return consumer_kills_; }
  [[nodiscard]] std::int64_t drained() const { return drained_; }

 private:
  template <class Put>
  [[noreturn]] void produce(std::uint32_t p, Put& put) {
    for (auto seq = static_cast<std::uint32_t>(at(attempting_[p]).load() + 1); seq < o_.max_seq; ++seq) {
      at(attempting_[p]).store(seq);
      if (p == 0) {
        put(item(p, seq));
      } else {
        for (bool done = false; !done;) {
          try {
            put(item(p, seq), 20ms);
            done = true;
          } catch (const ipckit::Full&) {
          }
        }
      }
      at(returned_[p]).store(seq);
      at(progress_[p]).fetch_add(1);
    }
    for (;;) ::pause();  // out of numbers: idle until killed
  }

  template <class GetAndTake>
  [[noreturn]] void consume(int slot, GetAndTake& get_and_take) {
    std::vector<std::int64_t> last(kProducers * o_.order_classes, -1);
    for (;;) {
      try {
        if (slot % 2 == 0) {
          get_and_take(last);
        } else {
          get_and_take(last, 20ms);
        }
      } catch (const ipckit::Empty&) {
        continue;
      } catch (const ipckit::DecodeError&) {
        fault(kDecode);
        continue;
      } catch (...) {
        fault(kUnexpected);
        std::this_thread::sleep_for(1ms);
        continue;
      }
      at(progress_[slot]).fetch_add(1);
    }
  }

  // Kills `victim` once it is a random number of operations into its loop,
  // or once `patience` has passed; a victim that never gets there means a
  // wedged queue, which fails the test when `wedge_fails`. Returns whether
  // it got there.
  bool kill(int victim, std::chrono::milliseconds patience, bool wedge_fails) {
    const std::int64_t target = progress_at_spawn_[victim] + 1 +
                                static_cast<std::int64_t>(rng_() % static_cast<unsigned>(o_.max_ops_before_kill));
    const auto end = Clock::now() + patience;
    bool progressed = true;
    while (at(progress_[victim]).load() < target) {
      if (is_producer(victim) && at(attempting_[victim]).load() + 1 >= o_.max_seq) break;
      if (Clock::now() > end) {
        progressed = false;
        break;
      }
      std::this_thread::yield();
    }
    if (!progressed && wedge_fails)
      ADD_FAILURE() << "slot " << victim << " made no progress for " << patience.count() << " ms after "
                    << producer_kills_ + consumer_kills_ << " kills: the queue wedged";
    kids_[victim]->kill(SIGKILL);
    EXPECT_EQ(kids_[victim]->wait_exit(), -SIGKILL);
    if (is_producer(victim)) {
      ++producer_kills_;
      const auto a = at(attempting_[victim]).load(), r = at(returned_[victim]).load();
      if (a != r) uncertain_.emplace(static_cast<std::uint32_t>(victim), a);
    } else {
      ++consumer_kills_;
    }
    return progressed;
  }

  Segment& seg_;
  KillRunOptions o_;
  Array<std::uint8_t> received_;
  Array<std::int64_t> attempting_, returned_, progress_, faults_;
  std::vector<std::unique_ptr<Child>> kids_;
  std::vector<std::int64_t> progress_at_spawn_;
  std::mt19937 rng_;
  int producer_kills_ = 0, consumer_kills_ = 0;
  std::set<std::pair<std::uint32_t, std::int64_t>> uncertain_;  // (producer, seq) whose put may not have returned
  Clock::time_point t0_{};
  Clock::duration kill_phase_{};
  std::int64_t drained_ = 0, delivered_ = 0, missing_ = 0, uncertain_arrived_ = 0;
};

}  // namespace ipckit::testing
