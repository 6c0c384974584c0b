// The four forms of every blocking call (untimed, duration, `_until` of any
// clock, non-blocking) on the synchronisation primitives, checked the same
// way for each: a form that cannot succeed gives up at its bound and says so
// the way the README's table says (false, or the primitive's exception); a
// zero or negative duration and a time point already past are one
// non-blocking try; durations and time points too large to add to the clock
// mean "no bound" instead of overflowing into the past; and each form
// succeeds when another process makes the object ready.
#include <unistd.h>

#include <functional>
#include <latch>
#include <limits>
#include <string>
#include <string_view>
#include <thread>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

namespace {

// One primitive's forms, each reduced to "did it succeed". A success
// consumes what it got (a unit, the lock); `undo` gives it back.
struct Forms {
  std::function<bool(std::chrono::nanoseconds)> timed;
  std::function<bool(SysClock::time_point)> until_system;
  std::function<bool(Clock::time_point)> until_steady;
  std::function<bool()> try_now;  // empty: the primitive has no non-blocking form
  std::function<void()> undo = [] {};
};

template <class Error, class F>
bool succeeds_unless(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Every form fails, the timed ones after their bound, the others at once.
void expect_each_form_gives_up(const Forms& f, const char* what) {
  SCOPED_TRACE(what);
  const auto gives_up_after = [](auto&& call, std::chrono::milliseconds at_least) {
    const auto t0 = Clock::now();
    EXPECT_FALSE(call());
    const auto took = Clock::now() - t0;
    EXPECT_GE(took, at_least);
    EXPECT_LT(took, at_least + 2s);
  };
  gives_up_after([&] { return f.timed(60ms); }, 60ms);
  gives_up_after([&] { return f.until_system(SysClock::now() + 60ms); }, 60ms);
  gives_up_after([&] { return f.until_steady(Clock::now() + 60ms); }, 60ms);
  // One try, no wait: a negative or zero duration, a time point already past.
  gives_up_after([&] { return f.timed(-5s); }, 0ms);
  gives_up_after([&] { return f.timed(0ns); }, 0ms);
  gives_up_after([&] { return f.until_system(SysClock::now() - 1h); }, 0ms);
  gives_up_after([&] { return f.until_steady(Clock::time_point::min()); }, 0ms);
  if (f.try_now) gives_up_after(f.try_now, 0ms);
}

// Every form succeeds at once on a ready object, also with bounds that
// cannot be added to the clock.
void expect_each_form_succeeds_when_ready(const Forms& f, const char* what) {
  SCOPED_TRACE(what);
  const auto succeeds = [&](auto&& call) {
    const auto t0 = Clock::now();
    EXPECT_TRUE(call());
    EXPECT_LT(Clock::now() - t0, 2s);
    f.undo();
  };
  succeeds([&] { return f.timed(std::chrono::nanoseconds::max()); });
  succeeds([&] { return f.timed(-1s); });
  succeeds([&] { return f.until_system(SysClock::time_point::max()); });
  succeeds([&] { return f.until_system(SysClock::now() - 1h); });
  succeeds([&] { return f.until_steady(Clock::time_point::max()); });
  if (f.try_now) succeeds(f.try_now);
}

// A child process makes the object ready only once the parent is waiting.
void expect_a_timed_wait_ends_when_another_process_makes_it_ready(const Forms& f, ipckit::Event& waiting,
                                                                  const std::function<void()>& make_ready) {
  Child helper([&] {
    ASSERT_TRUE(waiting.wait(20s));
    make_ready();
  });
  waiting.set();
  const auto t0 = Clock::now();
  EXPECT_TRUE(f.until_system(SysClock::now() + 20s));
  EXPECT_LT(Clock::now() - t0, 15s);
  EXPECT_EQ(helper.wait_exit(), 0);
}

}  // namespace

TEST(BlockingForms, Event) {
  ScopedSegmentName n("forms_event");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("E");
  Forms f{[&](auto d) { return e.wait(d); }, [&](auto t) { return e.wait_until(t); },
          [&](auto t) { return e.wait_until(t); }, [&] { return e.try_wait(); }};
  expect_each_form_gives_up(f, "unset event");
  auto waiting = seg.event("waiting");
  expect_a_timed_wait_ends_when_another_process_makes_it_ready(f, waiting,
                                                               [&] { Segment::open(n.name).event("E").set(); });
  EXPECT_TRUE(e.wait());
  expect_each_form_succeeds_when_ready(f, "set event");
}

TEST(BlockingForms, Semaphore) {
  ScopedSegmentName n("forms_sem");
  auto seg = Segment::create(n.name, 1 << 20);
  for (const bool tracked : {false, true}) {
    const std::string name = tracked ? "tracked" : "plain";
    auto s = seg.semaphore(name, 1, {.track_holders = tracked});
    auto held = seg.event(name + "_held");
    auto release = seg.event(name + "_release");
    // Another process holds the only unit until told to give it back.
    Child holder([&] {
      auto sem = Segment::open(n.name).semaphore(name, 1, {.track_holders = tracked});
      sem.acquire();
      held.set();
      ASSERT_TRUE(release.wait(30s));
      sem.release();
    });
    ASSERT_TRUE(held.wait(20s));
    Forms f{[&](auto d) { return s.acquire(d); }, [&](auto t) { return s.acquire_until(t); },
            [&](auto t) { return s.try_lock_until(t); }, [&] { return s.try_acquire(); }, [&] { s.release(); }};
    expect_each_form_gives_up(f, tracked ? "tracked, count 0" : "count 0");
    expect_a_timed_wait_ends_when_another_process_makes_it_ready(f, release, [] {});
    s.release();
    EXPECT_EQ(holder.wait_exit(), 0);
    expect_each_form_succeeds_when_ready(f, tracked ? "tracked, count 1" : "count 1");
  }
}

TEST(BlockingForms, LockAndRLock) {
  ScopedSegmentName n("forms_lock");
  auto seg = Segment::create(n.name, 1 << 20);
  auto held = seg.event("held");
  auto release = seg.event("release");
  auto lock = seg.lock("L");
  auto rlock = seg.rlock("R");
  Child holder([&] {
    auto s = Segment::open(n.name);
    auto l = s.lock("L");
    auto r = s.rlock("R");
    std::scoped_lock g(l, r);
    s.event("held").set();
    ASSERT_TRUE(s.event("release").wait(30s));
  });
  ASSERT_TRUE(held.wait(20s));
  Forms plain{[&](auto d) { return lock.try_lock_for(d); }, [&](auto t) { return lock.try_lock_until(t); },
              [&](auto t) { return lock.try_lock_until(t); }, [&] { return lock.try_lock(); }, [&] { lock.unlock(); }};
  Forms reentrant{[&](auto d) { return rlock.try_lock_for(d); }, [&](auto t) { return rlock.try_lock_until(t); },
                  [&](auto t) { return rlock.try_lock_until(t); }, [&] { return rlock.try_lock(); },
                  [&] { rlock.unlock(); }};
  // The throwing forms of the lock types: Timeout naming the holder.
  Forms throwing{[&](auto d) { return succeeds_unless<ipckit::Timeout>([&] { lock.lock(d); }); },
                 [&](auto t) { return succeeds_unless<ipckit::Timeout>([&] { lock.lock_until(t); }); },
                 [&](auto t) { return succeeds_unless<ipckit::Timeout>([&] { rlock.lock_until(t); }); }, nullptr,
                 [&] {}};
  expect_each_form_gives_up(plain, "Lock held by another process");
  expect_each_form_gives_up(reentrant, "RLock held by another process");
  expect_each_form_gives_up(throwing, "lock(d) / lock_until(t)");
  try {
    lock.lock(10ms);
    ADD_FAILURE() << "lock(10ms) on a held lock returned";
  } catch (const ipckit::Timeout& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(holder.pid())), std::string::npos) << e.what();
  }
  release.set();
  EXPECT_TRUE(lock.try_lock_until(SysClock::now() + 20s));
  lock.unlock();
  EXPECT_EQ(holder.wait_exit(), 0);
  expect_each_form_succeeds_when_ready(plain, "free Lock");
  expect_each_form_succeeds_when_ready(reentrant, "free RLock");
}

TEST(BlockingForms, ConditionWaitsReturnWhetherTheyWereNotified) {
  ScopedSegmentName n("forms_cond");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto flag = seg.value<int>("flag");
  const auto with_lock = [&](auto&& call) {
    std::unique_lock g(c);
    return call();
  };
  Forms f{[&](auto d) { return with_lock([&] { return c.wait(d); }); },
          [&](auto t) { return with_lock([&] { return c.wait_until(t); }); },
          [&](auto t) { return with_lock([&] { return c.wait_until(t); }); }, nullptr};
  expect_each_form_gives_up(f, "nobody notifies");
  Forms pred{[&](auto d) { return with_lock([&] { return c.wait(d, [&] { return flag.get() != 0; }); }); },
             [&](auto t) { return with_lock([&] { return c.wait_until(t, [&] { return flag.get() != 0; }); }); },
             [&](auto t) { return with_lock([&] { return c.wait_until(t, [&] { return flag.get() != 0; }); }); },
             nullptr};
  expect_each_form_gives_up(pred, "predicate false");
  auto waiting = seg.event("waiting");
  expect_a_timed_wait_ends_when_another_process_makes_it_ready(pred, waiting, [&] {
    auto s = Segment::open(n.name);
    auto cond = s.condition("C");
    std::lock_guard g(cond);
    s.value<int>("flag").set(1);
    cond.notify_all();
  });
  expect_each_form_succeeds_when_ready(pred, "predicate true");
}

TEST(BlockingForms, BarrierTimedWaitsBreakItAndThrowBrokenBarrier) {
  ScopedSegmentName n("forms_barrier");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 2);
  const auto passes = [&](auto&& call) {
    const bool ok = succeeds_unless<ipckit::BrokenBarrier>(call);
    b.reset();
    return ok;
  };
  Forms f{[&](auto d) { return passes([&] { b.wait(d); }); }, [&](auto t) { return passes([&] { b.wait_until(t); }); },
          [&](auto t) { return passes([&] { b.wait_until(t); }); }, nullptr};
  expect_each_form_gives_up(f, "the other party never comes");
  auto waiting = seg.event("waiting");
  expect_a_timed_wait_ends_when_another_process_makes_it_ready(
      f, waiting, [&] { Segment::open(n.name).barrier("B", 2).wait(20s); });
  // A bound too large for the clock is no bound: the barrier still trips.
  Child other([&] { Segment::open(n.name).barrier("B", 2).wait(20s); });
  EXPECT_NO_THROW(b.wait(std::chrono::nanoseconds::max()));
  EXPECT_EQ(other.wait_exit(), 0);
}

// The timed forms take any duration type, not only nanoseconds: a bound too
// large for nanoseconds (hours::max(), a huge floating one) is no bound
// rather than a conversion that overflows into the past (which would make
// the call a single try, failing at once), and a floating or coarse
// duration is a bound of that length.
namespace {

using std::chrono::hours;
using Seconds = std::chrono::duration<double>;
constexpr Seconds k10ms{0.01};
constexpr Seconds kHuge{1e300};  // far beyond nanoseconds::max()

// Runs `f` on another thread a little later, so that it most likely finds
// the caller waiting (if not, the caller finds the object ready: the
// expectations hold either way).
template <class F>
std::jthread soon(F f) {
  return std::jthread([f = std::move(f)] {
    std::this_thread::sleep_for(50ms);
    f();
  });
}

// Another thread takes something (a lock, a unit) at once and gives it back
// a little after give_back_soon().
class HeldElsewhere {
 public:
  HeldElsewhere(std::function<void()> take, std::function<void()> give)
      : thread_([this, take = std::move(take), give = std::move(give)] {
          take();
          taken_.count_down();
          go_.wait();
          std::this_thread::sleep_for(50ms);
          give();
        }) {
    taken_.wait();
  }
  HeldElsewhere(const HeldElsewhere&) = delete;
  HeldElsewhere& operator=(const HeldElsewhere&) = delete;
  ~HeldElsewhere() { give_back_soon(); }
  void give_back_soon() {
    if (!told_) go_.count_down();
    told_ = true;
  }

 private:
  std::latch taken_{1};
  std::latch go_{1};
  bool told_ = false;
  std::jthread thread_;  // last: joined first, while the latches live
};

// `call` returns false, after `at_least` and well before 2 s more.
template <class F>
void gives_up_after(F&& call, std::chrono::milliseconds at_least) {
  const auto t0 = Clock::now();
  EXPECT_FALSE(call());
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, at_least);
  EXPECT_LT(took, at_least + 2s);
}

// Lock or RLock: the bool forms and the throwing ones with any duration.
template <class L>
void expect_lock_forms_take_any_duration(L& lock) {
  {
    HeldElsewhere h([&] { lock.lock(); }, [&] { lock.unlock(); });
    gives_up_after([&] { return lock.try_lock_for(k10ms); }, 10ms);
    gives_up_after([&] { return lock.try_lock_for(std::chrono::duration<float, std::milli>(-3.f)); }, 0ms);
    EXPECT_THROW(lock.lock(k10ms), ipckit::Timeout);
    h.give_back_soon();
    EXPECT_TRUE(lock.try_lock_for(hours::max()));
    lock.unlock();
  }
  EXPECT_TRUE(lock.try_lock_for(kHuge));
  lock.unlock();
  EXPECT_NO_THROW(lock.lock(hours::max()));
  lock.unlock();
  EXPECT_NO_THROW(lock.lock(std::chrono::minutes(1)));
  lock.unlock();
  EXPECT_FALSE(lock.locked());
}

}  // namespace

TEST(BlockingForms, AnyDurationEvent) {
  ScopedSegmentName n("forms_dur_event");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("E");
  gives_up_after([&] { return e.wait(k10ms); }, 10ms);
  gives_up_after([&] { return e.wait(Seconds(-1.5)); }, 0ms);
  gives_up_after([&] { return e.wait(Seconds(std::numeric_limits<double>::quiet_NaN())); }, 0ms);  // a single try
  {
    auto t = soon([&] { e.set(); });
    EXPECT_TRUE(e.wait(hours::max()));
  }
  EXPECT_TRUE(e.wait(std::chrono::minutes(1)));
  EXPECT_TRUE(e.wait(kHuge));
}

TEST(BlockingForms, AnyDurationSemaphore) {
  ScopedSegmentName n("forms_dur_sem");
  auto seg = Segment::create(n.name, 1 << 20);
  for (const bool tracked : {false, true}) {
    SCOPED_TRACE(tracked ? "tracked" : "plain");
    auto s = seg.semaphore(tracked ? "tracked" : "plain", 1, {.track_holders = tracked});
    {
      HeldElsewhere h([&] { s.acquire(); }, [&] { s.release(); });
      gives_up_after([&] { return s.acquire(k10ms); }, 10ms);
      gives_up_after([&] { return s.try_lock_for(std::chrono::duration<float, std::milli>(10.f)); }, 10ms);
      h.give_back_soon();
      EXPECT_TRUE(s.acquire(hours::max()));
    }
    s.release();
    EXPECT_TRUE(s.acquire(kHuge));
    s.release();
    EXPECT_TRUE(s.try_lock_for(hours::max()));
    s.release();
    EXPECT_TRUE(s.acquire(std::chrono::minutes(1)));
    s.release();
    EXPECT_EQ(s.value(), 1u);
  }
}

TEST(BlockingForms, AnyDurationLockAndRLock) {
  ScopedSegmentName n("forms_dur_lock");
  auto seg = Segment::create(n.name, 1 << 20);
  auto lock = seg.lock("L");
  auto rlock = seg.rlock("R");
  {
    SCOPED_TRACE("Lock");
    expect_lock_forms_take_any_duration(lock);
  }
  {
    SCOPED_TRACE("RLock");
    expect_lock_forms_take_any_duration(rlock);
  }
  // Re-entry with any duration.
  rlock.lock(hours::max());
  EXPECT_TRUE(rlock.try_lock_for(kHuge));
  EXPECT_EQ(rlock.depth(), 2u);
  rlock.unlock();
  rlock.unlock();
}

TEST(BlockingForms, AnyDurationCondition) {
  ScopedSegmentName n("forms_dur_cond");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto flag = seg.value<int>("flag");
  const auto flag_set = [&] { return flag.get() != 0; };
  std::unique_lock g(c);
  gives_up_after([&] { return c.wait(k10ms); }, 10ms);
  gives_up_after([&] { return c.wait_for(k10ms, flag_set); }, 10ms);
  gives_up_after([&] { return c.wait_for(Seconds(-1.0)); }, 0ms);
  {
    auto t = soon([&] {
      std::lock_guard notifier(c);
      flag.set(1);
      c.notify_all();
    });
    EXPECT_TRUE(c.wait(hours::max(), flag_set));
    EXPECT_FALSE(c.owner_died());
    g.unlock();  // a wait that gave up at once would still hold it: the notifier could not finish
  }
  g.lock();
  EXPECT_TRUE(c.wait_for(hours::max(), flag_set));
  EXPECT_TRUE(c.wait(kHuge, flag_set));
  EXPECT_TRUE(c.wait_for(std::chrono::minutes(1), flag_set));
}

TEST(BlockingForms, AnyDurationBarrier) {
  ScopedSegmentName n("forms_dur_barrier");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 2);
  const auto t0 = Clock::now();
  EXPECT_THROW(b.wait(k10ms), ipckit::BrokenBarrier);
  EXPECT_GE(Clock::now() - t0, 10ms);
  EXPECT_TRUE(b.reset(hours::max()));
  Child other([&] { Segment::open(n.name).barrier("B", 2).wait(20s); });
  EXPECT_NO_THROW(b.wait(hours::max()));
  EXPECT_EQ(other.wait_exit(), 0);
  EXPECT_FALSE(b.broken());
  EXPECT_TRUE(b.reset(kHuge));
  EXPECT_TRUE(b.leave(std::chrono::minutes(1)));
  EXPECT_TRUE(b.leave(hours::max()));
}

TEST(BlockingForms, AnyDurationPipe) {
  auto ends = ipckit::Pipe();
  auto& a = ends.first;
  auto& b = ends.second;
  gives_up_after([&] { return a.poll(k10ms); }, 10ms);
  {
    auto t = soon([&] { b.send_bytes(std::string_view("x")); });
    EXPECT_TRUE(a.poll(hours::max()));
  }
  EXPECT_TRUE(a.poll(kHuge));
  EXPECT_EQ(a.recv_bytes(hours::max()), "x");
}

TEST(BlockingForms, AnyDurationProcessJoin) {
  ScopedSegmentName n("forms_dur_proc");
  auto seg = Segment::create(n.name, 1 << 20);
  auto go = seg.event("go");
  ipckit::Process p([&] {
    if (!Segment::open(n.name).event("go").wait(20s)) ::_exit(3);
  });
  p.start();
  gives_up_after([&] { return p.join(k10ms); }, 10ms);
  {
    auto t = soon([&] { go.set(); });
    EXPECT_TRUE(p.join(hours::max()));
  }
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(p.join(kHuge));
  EXPECT_TRUE(p.join(std::chrono::minutes(1)));
}
