// ipckit_soak — many processes use one segment for a long time while a
// supervisor SIGKILLs and SIGSTOPs them at random; then every promise is
// checked. Run it through scripts/soak.sh (not part of ctest).
//
//   ipckit_soak --seconds 60 [--seed N] [--fault-ms 80]
//
// Workers (each a forked process; killed ones are restarted):
//   4 producers   put ids (producer << 40 | seq) into a JoinableQueue<uint64_t>
//   4 consumers   get an id, count its receipt, task_done()
//   2 lock users  increment a counter under a Lock, with a redo journal
//   2 waiters     take tokens under a Condition (wait_for with a predicate)
//   1 notifier    adds tokens under the Condition and notifies
// The supervisor kills or stops (10-500 ms, then SIGCONT) a random worker
// every --fault-ms (on average), restarts the killed, samples throughput and
// every worker's memory once a second, then stops the faults, lets the
// workers drain and exit, and checks:
//
// Items, exactly once. A producer writes `attempt = seq` before put() and
// `confirmed = seq + 1` after it returns, and an incarnation starts after
// its predecessor's last attempt; an attempt left unconfirmed by a kill is a
// "maybe" (put() may or may not have finished) and is recorded. Consumers
// count each receipt in a shared byte per id. Then: no id is received twice,
// none is received that was never attempted, every confirmed id is received
// — except those a consumer got and was killed holding before it counted
// them: the JoinableQueue's ledger counts exactly the tasks of consumers that
// died before task_done() as abandoned, so the confirmed ids never received
// must number at most abandoned_tasks() (itself at most the consumer kills;
// a consumer killed after counting but before task_done() makes the bound
// loose by one, never wrong). Finally the queue is empty and join() returns.
//
// The counter, exactly. A lock user's critical section first writes a
// journal (who, the counter and its own count before), then the counter,
// then its count, then clears the journal. Whoever takes the lock with
// owner_died() true redoes a journal left open, so the counter always equals
// the sum of the users' counts; the repairs are counted.
//
// The condition. Tokens added (one store under the lock) and tokens taken
// (one store) never cross; after the drain every token was taken, and
// waiters never went 5 s without a wake while tokens were waiting.
//
// Throughput and memory: items received per second and each worker slot's
// anonymous RSS (RssAnon: its own heap, not the shared segment it touches)
// are compared between the first and the last 10 s. Items per wall second
// follow whatever else the machine runs, so the verdict uses items per CPU
// second of the producers and consumers (both are printed): PASS needs the
// last at least half the first, and no slot's RssAnon grown by more than
// 25% + 2 MiB.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kProducers = 4;
constexpr int kConsumers = 4;
constexpr int kLockUsers = 2;
constexpr int kWaiters = 2;
constexpr int kNotifiers = 1;
constexpr std::uint64_t kSeqBits = 40;
constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 27;  // per producer: 128 Mi ids (16 MiB of receipt bits)
constexpr std::size_t kMaxMaybes = 4096;

enum class Role { Producer, Consumer, LockUser, Waiter, Notifier };
const char* role_name(Role r) {
  switch (r) {
    case Role::Producer:
      return "producer";
    case Role::Consumer:
      return "consumer";
    case Role::LockUser:
      return "lock user";
    case Role::Waiter:
      return "waiter";
    case Role::Notifier:
      return "notifier";
  }
  return "?";
}

// Every shared object, opened by name in each process.
struct Shared {
  explicit Shared(ipckit::Segment& s)
      : seg(s),
        queue(s.joinable_queue<std::uint64_t>("items", {.capacity_bytes = 64 * 1024})),
        receipts(s.array<std::uint64_t>("receipts", kProducers * kMaxSeq / 64)),
        duplicates(s.array<std::uint64_t>("duplicates", 1)),
        attempt(s.array<std::uint64_t>("attempt", kProducers)),      // 1 + seq of the last attempt (0: none)
        confirmed(s.array<std::uint64_t>("confirmed", kProducers)),  // 1 + seq of the last confirmed put
        maybe_count(s.array<std::uint64_t>("maybe_count", kProducers)),
        maybes(s.array<std::uint64_t>("maybes", kProducers * kMaxMaybes)),
        received(s.array<std::uint64_t>("received", kConsumers)),
        lock(s.lock("counter_lock")),
        counter(s.value<std::uint64_t>("counter")),
        mine(s.array<std::uint64_t>("mine", kLockUsers)),
        journal_active(s.value<std::uint64_t>("journal_active")),
        journal_counter(s.value<std::uint64_t>("journal_counter")),
        journal_mine(s.value<std::uint64_t>("journal_mine")),
        repairs(s.value<std::uint64_t>("repairs")),
        cond(s.condition("tokens_cv")),
        added(s.value<std::uint64_t>("tokens_added")),
        taken(s.value<std::uint64_t>("tokens_taken")),
        crossed(s.value<std::uint64_t>("tokens_crossed")),
        last_take_ns(s.value<std::int64_t>("last_take_ns")),
        stop_producing(s.event("stop_producing")),
        drain(s.event("drain")) {}

  ipckit::Segment& seg;
  ipckit::JoinableQueue<std::uint64_t> queue;
  ipckit::Array<std::uint64_t> receipts;    // one bit per id, set by the consumer that got it
  ipckit::Array<std::uint64_t> duplicates;  // receipts of an id whose bit was already set
  ipckit::Array<std::uint64_t> attempt, confirmed, maybe_count, maybes, received;
  ipckit::Lock lock;
  ipckit::Value<std::uint64_t> counter;
  ipckit::Array<std::uint64_t> mine;
  // The redo journal: what the section under way started from; `active`
  // (1 + the user's index) is written last and cleared last.
  ipckit::Value<std::uint64_t> journal_active, journal_counter, journal_mine;
  ipckit::Value<std::uint64_t> repairs;
  ipckit::Condition cond;
  ipckit::Value<std::uint64_t> added, taken, crossed;
  ipckit::Value<std::int64_t> last_take_ns;
  ipckit::Event stop_producing, drain;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

template <class T>
std::atomic_ref<T> at(T& x) {
  return std::atomic_ref<T>(x);
}

// ---------------------------------------------------------------------------
// Workers: each runs until told to stop, then returns (exit status 0).

void producer(Shared& sh, int p) {
  // Resume after the last attempt of a killed predecessor; an attempt it
  // never confirmed may or may not be in the queue: record it as a maybe.
  const std::uint64_t last_attempt = at(sh.attempt[p]).load();
  const std::uint64_t last_confirmed = at(sh.confirmed[p]).load();
  if (last_attempt != 0 && last_attempt > last_confirmed) {
    const std::uint64_t n = at(sh.maybe_count[p]).load();
    if (n < kMaxMaybes) {
      at(sh.maybes[p * kMaxMaybes + n]).store(last_attempt - 1);
      at(sh.maybe_count[p]).store(n + 1);  // killed before this: re-recorded next time
    }
  }
  std::uint64_t seq = std::max(last_attempt, last_confirmed);
  while (!sh.stop_producing.is_set() && seq < kMaxSeq) {
    const std::uint64_t id = (std::uint64_t(p) << kSeqBits) | seq;
    at(sh.attempt[p]).store(seq + 1);
    try {
      sh.queue.put(id, 100ms);
    } catch (const ipckit::Full&) {
      continue;  // not put: the same seq again (`attempt` already says so)
    }
    at(sh.confirmed[p]).store(seq + 1);
    ++seq;
  }
  // Out of ids (a very long run): idle rather than exit, which would count as a crash.
  while (!sh.stop_producing.is_set()) std::this_thread::sleep_for(10ms);
}

void consumer(Shared& sh, int c) {
  for (;;) {
    std::uint64_t id = 0;
    try {
      id = sh.queue.get(100ms);
    } catch (const ipckit::Empty&) {
      if (sh.drain.is_set()) return;  // producers are done and the queue is empty
      continue;
    }
    const std::uint64_t p = id >> kSeqBits;
    const std::uint64_t seq = id & ((std::uint64_t{1} << kSeqBits) - 1);
    if (p < kProducers && seq < kMaxSeq) {
      const std::uint64_t bit = std::uint64_t{1} << (seq % 64);
      if (at(sh.receipts[(p * kMaxSeq + seq) / 64]).fetch_or(bit) & bit) at(sh.duplicates[0]).fetch_add(1);
    } else {
      std::fprintf(stderr, "soak: consumer %d got an id no producer makes: %#" PRIx64 "\n", c, id);
      std::_Exit(3);
    }
    at(sh.received[c]).fetch_add(1);
    sh.queue.task_done();
  }
}

// Redoes the section a killed holder left half done (called holding the lock).
void repair(Shared& sh) {
  const std::uint64_t active = sh.journal_active.get();
  if (active != 0) {
    sh.counter.set(sh.journal_counter.get() + 1);
    at(sh.mine[active - 1]).store(sh.journal_mine.get() + 1);
    sh.journal_active.set(0);
  }
  sh.repairs.set(sh.repairs.get() + 1);
  sh.lock.mark_consistent();
}

void lock_user(Shared& sh, int u) {
  while (!sh.stop_producing.is_set()) {
    std::lock_guard g(sh.lock);
    if (sh.lock.owner_died()) repair(sh);
    const std::uint64_t before = sh.counter.get();
    const std::uint64_t mine = at(sh.mine[u]).load();
    sh.journal_counter.set(before);
    sh.journal_mine.set(mine);
    sh.journal_active.set(std::uint64_t(u) + 1);
    sh.counter.set(before + 1);
    at(sh.mine[u]).store(mine + 1);
    sh.journal_active.set(0);
  }
}

void waiter(Shared& sh, int) {
  for (;;) {
    // Every update under this lock is one store, so a holder killed inside
    // leaves nothing to repair (owner_died() is simply ignored).
    std::unique_lock g(sh.cond);
    const bool got = sh.cond.wait_for(100ms, [&] { return sh.taken.get() < sh.added.get(); });
    if (got) {
      sh.taken.set(sh.taken.get() + 1);  // one store: the commit point
      sh.last_take_ns.set(now_ns());
    } else if (sh.drain.is_set() && sh.taken.get() >= sh.added.get()) {
      return;
    }
    if (sh.taken.get() > sh.added.get()) sh.crossed.set(1);
  }
}

void notifier(Shared& sh, int) {
  while (!sh.stop_producing.is_set()) {
    {
      std::lock_guard g(sh.cond);
      sh.added.set(sh.added.get() + 1);
      sh.cond.notify();
    }
    std::this_thread::sleep_for(200us);
  }
}

// ---------------------------------------------------------------------------
// Supervisor

struct Slot {
  Role role;
  int index;
  pid_t pid = 0;
  bool stopped = false;
  Clock::time_point resume_at{};
  int kills = 0, stops = 0, restarts = 0;
  std::uint64_t rss_first = 0, rss_last = 0;  // RssAnon, KiB: max over the first / last 10 s
};

std::uint64_t rss_anon_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "RssAnon:") {
      std::uint64_t v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

// CPU time (user + system) of a process so far, in clock ticks; 0 if gone.
std::uint64_t cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::strtoull(f.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(f.c_str(), nullptr, 10);
  }
  return utime + stime;
}

pid_t start_worker(const std::string& seg_name, const Slot& slot) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("soak: fork");
    std::exit(2);
  }
  if (pid != 0) return pid;
  int code = 0;
  try {
    ipckit::Segment seg = ipckit::Segment::open(seg_name);
    Shared sh(seg);
    switch (slot.role) {
      case Role::Producer:
        producer(sh, slot.index);
        break;
      case Role::Consumer:
        consumer(sh, slot.index);
        break;
      case Role::LockUser:
        lock_user(sh, slot.index);
        break;
      case Role::Waiter:
        waiter(sh, slot.index);
        break;
      case Role::Notifier:
        notifier(sh, slot.index);
        break;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s %d failed: %s\n", role_name(slot.role), slot.index, e.what());
    code = 4;
  }
  std::_Exit(code);
}

struct Options {
  int seconds = 60;
  unsigned seed = 0;
  int fault_ms = 80;
};

Options parse(int argc, char** argv) {
  Options o;
  o.seed = static_cast<unsigned>(std::random_device{}());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soak: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::strtol(argv[++i], nullptr, 10);
    };
    if (a == "--seconds")
      o.seconds = static_cast<int>(next());
    else if (a == "--seed")
      o.seed = static_cast<unsigned>(next());
    else if (a == "--fault-ms")
      o.fault_ms = static_cast<int>(next());
    else {
      std::fprintf(stderr, "usage: ipckit_soak [--seconds 60] [--seed N] [--fault-ms 80]\n");
      std::exit(2);
    }
  }
  o.seconds = std::max(o.seconds, 21);  // a first and a last 10 s that do not overlap
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const std::string name = "soak." + std::to_string(::getpid());
  ipckit::SegmentRemover remover(name);
  ipckit::Segment seg = ipckit::Segment::create(name, 80u << 20);
  Shared sh(seg);
  std::mt19937 rng(opt.seed);
  std::printf("soak: %d s, seed %u, a fault every ~%d ms; segment '%s'\n", opt.seconds, opt.seed, opt.fault_ms,
              name.c_str());
  std::fflush(stdout);

  std::vector<Slot> slots;
  const auto add = [&](Role r, int n) {
    for (int i = 0; i < n; ++i) slots.push_back(Slot{r, i});
  };
  add(Role::Producer, kProducers);
  add(Role::Consumer, kConsumers);
  add(Role::LockUser, kLockUsers);
  add(Role::Waiter, kWaiters);
  add(Role::Notifier, kNotifiers);
  for (auto& s : slots) s.pid = start_worker(name, s);

  std::vector<std::string> failures;
  const auto fail = [&](const std::string& why) { failures.push_back(why); };
  const auto total_received = [&] {
    std::uint64_t n = 0;
    for (int c = 0; c < kConsumers; ++c) n += at(sh.received[c]).load();
    return n;
  };

  // Reaps workers that ended: by our SIGKILL (restart), or otherwise (a failure).
  const auto reap = [&](bool restart) {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (auto& s : slots) {
        if (s.pid != pid) continue;
        s.pid = 0;
        s.stopped = false;
        const bool killed_by_us = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        if (!killed_by_us && !(WIFEXITED(status) && WEXITSTATUS(status) == 0 && !restart))
          fail(std::string(role_name(s.role)) + " " + std::to_string(s.index) + " ended by itself (" +
               (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                    : "exit " + std::to_string(WEXITSTATUS(status))) +
               ")");
        if (restart) {
          s.pid = start_worker(name, s);
          ++s.restarts;
        }
      }
    }
  };

  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(opt.seconds);
  std::vector<std::uint64_t> per_second;  // items received in each second
  // CPU ticks the producers and consumers used in each second: on a busy
  // machine the items per CPU second stay flat when the library does, while
  // items per wall second follow the load.
  std::vector<std::uint64_t> cpu_per_second;
  std::vector<std::uint64_t> last_cpu(slots.size(), 0);
  std::vector<pid_t> last_cpu_pid(slots.size(), 0);
  std::uint64_t last_received = 0;
  auto next_sample = start + 1s;
  auto next_fault = start + std::chrono::milliseconds(opt.fault_ms);
  std::uint64_t kills = 0, stops = 0, consumer_kills = 0;
  std::int64_t longest_token_gap_ns = 0;
  while (Clock::now() < end) {
    const auto now = Clock::now();
    for (auto& s : slots) {
      if (s.stopped && now >= s.resume_at && s.pid != 0) {
        ::kill(s.pid, SIGCONT);
        s.stopped = false;
      }
    }
    if (now >= next_fault) {
      Slot& s = slots[std::uniform_int_distribution<std::size_t>(0, slots.size() - 1)(rng)];
      if (s.pid != 0 && !s.stopped) {
        if (rng() % 2 == 0) {
          ::kill(s.pid, SIGKILL);
          ++s.kills;
          ++kills;
          if (s.role == Role::Consumer) ++consumer_kills;
        } else {
          ::kill(s.pid, SIGSTOP);
          s.stopped = true;
          s.resume_at = now + std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 500)(rng));
          ++s.stops;
          ++stops;
        }
      }
      next_fault = now + std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 2 * opt.fault_ms)(rng));
    }
    reap(true);
    if (now >= next_sample) {
      const double t = std::chrono::duration<double>(now - start).count();
      const std::uint64_t r = total_received();
      per_second.push_back(r - last_received);
      last_received = r;
      std::uint64_t cpu = 0;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        const Slot& s = slots[i];
        if (s.role != Role::Producer && s.role != Role::Consumer) continue;
        const std::uint64_t ticks = s.pid != 0 ? cpu_ticks(s.pid) : 0;
        if (s.pid != 0 && s.pid == last_cpu_pid[i] && ticks >= last_cpu[i])
          cpu += ticks - last_cpu[i];
        else
          cpu += ticks;  // a new incarnation: all it used
        last_cpu[i] = ticks;
        last_cpu_pid[i] = s.pid;
      }
      cpu_per_second.push_back(cpu);
      for (auto& s : slots) {
        if (s.pid == 0) continue;
        const std::uint64_t kib = rss_anon_kib(s.pid);
        if (t <= 10.5) s.rss_first = std::max(s.rss_first, kib);
        if (t >= opt.seconds - 10.5) s.rss_last = std::max(s.rss_last, kib);
      }
      // A waiter starved while tokens wait (not counting stops of the waiters themselves).
      const std::int64_t last_take = sh.last_take_ns.get();
      if (last_take != 0 && sh.taken.get() < sh.added.get())
        longest_token_gap_ns = std::max(longest_token_gap_ns, now_ns() - last_take);
      next_sample += 1s;
    }
    std::this_thread::sleep_for(2ms);
  }

  // Wind down: no more faults, everyone running, producers stop, the rest drains.
  for (auto& s : slots)
    if (s.stopped && s.pid != 0) ::kill(s.pid, SIGCONT);
  reap(true);
  sh.stop_producing.set();
  const auto wait_role_exit = [&](Role r, std::chrono::seconds limit) {
    const auto until = Clock::now() + limit;
    for (;;) {
      reap(false);
      bool any = false;
      for (auto& s : slots) any = any || (s.role == r && s.pid != 0);
      if (!any) return true;
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
  };
  for (Role r : {Role::Producer, Role::LockUser, Role::Notifier})
    if (!wait_role_exit(r, 20s)) fail(std::string(role_name(r)) + "s did not stop within 20 s");
  sh.drain.set();
  for (Role r : {Role::Consumer, Role::Waiter})
    if (!wait_role_exit(r, 30s)) fail(std::string(role_name(r)) + "s did not drain within 30 s");
  for (auto& s : slots)
    if (s.pid != 0) {
      ::kill(s.pid, SIGKILL);
      ::waitpid(s.pid, nullptr, 0);
    }

  // ---- Items
  std::uint64_t confirmed_total = 0, maybe_total = 0, maybe_received = 0, missing = 0, invented = 0;
  const std::uint64_t duplicates = at(sh.duplicates[0]).load();
  const auto received_bit = [&](int p, std::uint64_t seq) {
    return (at(sh.receipts[(p * kMaxSeq + seq) / 64]).load() >> (seq % 64)) & 1;
  };
  for (int p = 0; p < kProducers; ++p) {
    std::set<std::uint64_t> maybe;
    const std::uint64_t nm = std::min<std::uint64_t>(at(sh.maybe_count[p]).load(), kMaxMaybes);
    for (std::uint64_t k = 0; k < nm; ++k) maybe.insert(at(sh.maybes[p * kMaxMaybes + k]).load());
    // The last incarnation's own unconfirmed attempt (a Full that was retried is confirmed later).
    const std::uint64_t last_attempt = at(sh.attempt[p]).load();
    if (last_attempt > at(sh.confirmed[p]).load()) maybe.insert(last_attempt - 1);
    const std::uint64_t limit = std::max(last_attempt, at(sh.confirmed[p]).load());
    for (std::uint64_t seq = 0; seq < limit; ++seq) {
      const bool got = received_bit(p, seq);
      if (maybe.count(seq) != 0) {
        ++maybe_total;
        maybe_received += got;
      } else {
        ++confirmed_total;
        missing += !got;
      }
    }
    for (std::uint64_t seq = limit; seq < kMaxSeq; ++seq) {
      if (seq % 64 == 0 && at(sh.receipts[(p * kMaxSeq + seq) / 64]).load() == 0) {
        seq += 63;
        continue;
      }
      invented += received_bit(p, seq);
    }
  }
  const std::uint64_t abandoned = sh.queue.abandoned_tasks();
  if (duplicates != 0) fail(std::to_string(duplicates) + " ids received more than once");
  if (invented != 0) fail(std::to_string(invented) + " ids received that no producer attempted");
  if (missing > abandoned)
    fail(std::to_string(missing) + " confirmed ids never received, more than the " + std::to_string(abandoned) +
         " tasks abandoned by killed consumers");
  if (abandoned > consumer_kills)
    fail(std::to_string(abandoned) + " abandoned tasks from only " + std::to_string(consumer_kills) +
         " consumer kills");
  if (sh.queue.qsize() != 0) fail("the queue still holds " + std::to_string(sh.queue.qsize()) + " items");
  if (!sh.queue.join(5s))
    fail("join() did not return: " + std::to_string(sh.queue.unfinished_tasks()) + " unfinished tasks");

  // ---- Counter
  {
    std::lock_guard g(sh.lock);  // takes over a holder killed in the wind-down, if any
    if (sh.lock.owner_died()) repair(sh);
  }
  const std::uint64_t counter = sh.counter.get();
  std::uint64_t mine_total = 0;
  for (int u = 0; u < kLockUsers; ++u) mine_total += at(sh.mine[u]).load();
  if (counter != mine_total)
    fail("counter " + std::to_string(counter) + " != sum of the users' increments " + std::to_string(mine_total));

  // ---- Condition
  const std::uint64_t added = sh.added.get(), taken = sh.taken.get();
  if (sh.crossed.get() != 0) fail("more tokens taken than added at some point");
  if (taken != added) fail("tokens added " + std::to_string(added) + " != taken " + std::to_string(taken));
  if (longest_token_gap_ns > std::int64_t{5'000'000'000})
    fail("waiters went " + std::to_string(longest_token_gap_ns / 1'000'000) + " ms without a wake while tokens waited");

  // ---- Throughput and memory
  const auto window = [&](std::size_t from, std::size_t n) {
    std::uint64_t sum = 0;
    for (std::size_t i = from; i < from + n && i < per_second.size(); ++i) sum += per_second[i];
    return static_cast<double>(sum) / static_cast<double>(n);
  };
  const std::size_t n = per_second.size();
  const double first_rate = window(0, 10), last_rate = n >= 10 ? window(n - 10, 10) : 0;
  const auto per_cpu = [&](std::size_t from) {
    std::uint64_t items = 0, ticks = 0;
    for (std::size_t i = from; i < from + 10 && i < n; ++i) {
      items += per_second[i];
      ticks += cpu_per_second[i];
    }
    return ticks == 0 ? 0.0 : static_cast<double>(items) * 1.0 / (static_cast<double>(ticks) / ::sysconf(_SC_CLK_TCK));
  };
  const double first_cpu_rate = per_cpu(0), last_cpu_rate = n >= 10 ? per_cpu(n - 10) : 0;
  if (last_cpu_rate < 0.5 * first_cpu_rate)
    fail("throughput per CPU second fell from " + std::to_string(static_cast<long>(first_cpu_rate)) + " to " +
         std::to_string(static_cast<long>(last_cpu_rate)) + " items");

  std::printf("\n=== soak summary (%d s, seed %u) ===\n", opt.seconds, opt.seed);
  std::printf("faults:      %" PRIu64 " SIGKILLs (%" PRIu64 " of consumers), %" PRIu64 " SIGSTOP/SIGCONT pairs\n",
              kills, consumer_kills, stops);
  std::printf("items:       %" PRIu64 " confirmed puts, %" PRIu64 " received exactly once, %" PRIu64
              " never received (<= %" PRIu64 " abandoned tasks of killed consumers), %" PRIu64 " duplicates, %" PRIu64
              " invented\n",
              confirmed_total, confirmed_total - missing, missing, abandoned, duplicates, invented);
  std::printf("             %" PRIu64 " unconfirmed puts of killed producers, %" PRIu64 " of them received once\n",
              maybe_total, maybe_received);
  std::printf("counter:     %" PRIu64 " == sum of increments %" PRIu64 "; %" PRIu64 " owner_died repairs\n", counter,
              mine_total, sh.repairs.get());
  std::printf("condition:   %" PRIu64 " tokens added, %" PRIu64 " taken; longest starved gap %" PRId64 " ms\n", added,
              taken, longest_token_gap_ns / 1'000'000);
  std::printf("throughput:  first 10 s %.0f items/s, last 10 s %.0f items/s (wall clock; follows the machine's load)\n",
              first_rate, last_rate);
  std::printf("             first 10 s %.0f, last 10 s %.0f items per CPU second of the producers and consumers\n",
              first_cpu_rate, last_cpu_rate);
  {
    // Sleepers counted on the queue's futex words after everyone left: those
    // of waiters killed asleep until a wake call that woke nobody audits them.
    const auto* q =
        static_cast<const ipckit::detail::QueueState*>(ipckit::detail::SegmentAccess::object_body(seg, "items"));
    std::printf("             queue sleeper counts left at the end: data %u, space %u, join %u\n",
                ipckit::detail::sleeper_count(q->data.sleepers.load()),
                ipckit::detail::sleeper_count(q->space.sleepers.load()),
                ipckit::detail::sleeper_count(q->tasks.join_sleepers.load()));
  }
  std::printf("             per second (k items/s):");
  for (const std::uint64_t v : per_second) std::printf(" %" PRIu64, v / 1000);
  std::printf("\n");
  std::printf("memory (RssAnon, KiB, max in the first / last 10 s; kills/stops/restarts):\n");
  for (const auto& s : slots) {
    std::printf("  %-9s %d  %6" PRIu64 " -> %6" PRIu64 "   %d/%d/%d\n", role_name(s.role), s.index, s.rss_first,
                s.rss_last, s.kills, s.stops, s.restarts);
    if (s.rss_first != 0 && s.rss_last > s.rss_first + s.rss_first / 4 + 2048)
      fail(std::string(role_name(s.role)) + " " + std::to_string(s.index) + " grew from " +
           std::to_string(s.rss_first) + " to " + std::to_string(s.rss_last) + " KiB");
  }
  const std::uint64_t me = rss_anon_kib(::getpid());
  std::printf("  supervisor   %6" PRIu64 " KiB at the end\n", me);
  for (const auto& f : failures) std::printf("FAIL: %s\n", f.c_str());
  std::printf("soak: %s\n", failures.empty() ? "PASS" : "FAIL");
  return failures.empty() ? 0 : 1;
}
