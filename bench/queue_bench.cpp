// bench/queue_bench.cpp — message queues between processes, side by side.
//
// Every row forks its processes from one parent, which creates the queue
// first; the children meet at a start line (each child's setup and warm-up
// messages come before it) and are released together. Rows of one part run
// interleaved (round r runs every row once, from a rotating start) so that a
// shared machine's noise falls on all alike; medians over runs are compared,
// min and max over runs are printed beside them. Before each run the parent
// waits (bounded, --quiet-wait-ms) for idle CPUs. A watchdog (--timeout-s)
// kills a run that does not finish and names how far each process got. Every
// row checks what arrives: a wrong count, order or payload fails the row.
//
// Parts (select with --mode; see --list):
//
// Two-process parts (oneway, realistic, pingpong, big) run twice (--pinning
// both): first unpinned, as users run their processes (scripts/bench.sh's
// targets are on these), then with the two sides pinned to two different CPUs (results
// named q1pin_, qrpin_, rtpin_, bigpin_ instead of q1_, qr_, rt_, big_).
//
// 1. oneway — one-way throughput of 64-byte messages, 1 producer process ->
//    1 consumer process. The producer sends --messages messages (after
//    --warm-messages untimed ones that both sides pass first); the timed
//    region runs from the release (the parent's clock read just before it
//    raises the start flag) to the consumer's clock read after it got and
//    checked the last message. msg/s = messages / that time.
//    The message is `Msg64`, a plain 64-byte struct (56 payload bytes + a
//    uint64 sequence number); the consumer checks the sequence number and two
//    payload bytes that change with it. Rows:
//      ipckit_queue       ipckit Queue<Msg64>: put(msg) / get() (a plain struct
//                         travels as its bytes)
//      ipckit_queue_batch   the same through put_many/get_many, 16 at a time
//      ipckit_queue_cereal  the same bytes as a struct with a cereal
//                         serialize(), which ipckit then encodes through
//      ipckit_byte_queue  ipckit ByteQueue, the struct's 64 bytes: put(view) / get()
//      boost_mq           Boost.Interprocess message_queue, 64-byte messages
//      raw_ring           the floor: a shared-memory SPSC ring of 64-byte slots,
//                         producer and consumer indices on separate cache
//                         lines, each side caching the other's index and
//                         spinning (pause) while full/empty; one release store
//                         publishes or frees each message.
//    All rings hold the same bytes (--capacity-bytes, 1 MiB: Boost and the
//    raw ring get capacity/64 slots).
//
// 1b. realistic — as oneway, --real-messages of a realistic object
//    (`Realistic`: a std::string name, a std::vector<int> of 10 and a
//    std::map<std::string,int> of 4; 150 bytes in cereal's binary archive).
//    Rows: ipckit_queue (Queue<Realistic>: ipckit encodes it through its
//    serialize()); boost_mq_cereal (Boost message_queue of 256-byte messages
//    carrying what a Boost user's own code makes: cereal's binary archive over
//    a reused bufferstream, and on receipt decoded into a fresh object).
//    scripts/bench.sh adds Python's multiprocessing.Queue with the equivalent
//    dict (bench/python_queue.py, qr_python_mp_queue).
//
// 2. pingpong — round trip of a 64-byte message over two queues: A puts
//    message i on the first, B gets it, checks it and puts it on the second,
//    A gets it and checks it. A reads CLOCK_MONOTONIC before each round trip
//    (and after the last); a run's median and p99 are over its timed round
//    trips (after --warmup-trips untimed ones). Rows: ipckit_queue, boost_mq,
//    raw_spin (two raw rings as above: both sides spin — the floor).
//
// 3. big — one-way throughput of --big-size (1 MiB) messages, --big-messages
//    of them, timed as in part 1; MB/s = bytes / time. The producer stamps a
//    sequence number into the first and last 8 bytes of its buffer; the
//    consumer checks size and both stamps. Rows:
//      ipckit_queue_vec   ipckit Queue<std::vector<char>>: put(vec) / get()
//      ipckit_byte_queue  ipckit ByteQueue: put(view) / get() -> std::string
//      ipckit_queue_loan  zero-copy: ipckit ByteQueue (the same ring): loan(size),
//                         the item written in place ('y' and the two stamps,
//                         the bytes the other rows' items hold), publish();
//                         get_view(), every byte checked in place (the copying
//                         rows' consumers read every byte once through their
//                         copy out), release(). scripts/bench.sh's target: >= 1.5x
//                         raw_copy, paired.
//      ipckit_loan_copy_in  the same, the loan filled by a memcpy of the
//                         producer's stamped buffer, as the other rows' put
//                         does — printed for reference.
//      raw_copy           the floor: --big-slots (4) shared buffers of the
//                         message size, each with a full/empty flag on its own
//                         cache line; the producer memcpy's into the next free
//                         buffer and raises its flag, the consumer memcpy's it
//                         out into a private buffer and lowers it. The same
//                         bytes as the queues' rings (--big-capacity, 4 MiB).
//      raw_copy_1slot     the same with one buffer (copy in, then copy out:
//                         no overlap) — printed for reference.
//      raw_in_place       raw_copy's buffers, each item written and read in
//                         place as ipckit_queue_loan does: the zero-copy
//                         floor (what the loan row can reach at most).
//
// 4. mpmc — 4 producer processes x 4 consumer processes on one queue (not
//    pinned: 8 processes on this machine's CPUs). Each producer sends
//    --mpmc-messages / 4 messages tagged (producer, i); the last producer to
//    finish puts 4 stop messages, and each consumer stops at its first. The
//    timed region ends at the last consumer's stop. Each consumer checks that
//    every producer's messages reach it in increasing order and marks each in
//    its own table; the parent then checks that every message arrived exactly
//    once. Rows: ipckit_queue, boost_mq.
//
// 5. idle — children block on an empty ipckit queue: Queue::get() (the parent
//    puts an item --idle-ms + 0.3 s later) and Queue::get(--idle-ms) (times out
//    with Empty). Each measures its own CPU time across the call: % of a core =
//    CPU time / wall time. The worst of --idle-runs runs is reported.
//
// 6. cost — one process, no peer: CPU ns per put+get pair of each queue (the
//    consumer side never waits), and the parts of ipckit's path alone: cereal
//    cereal encode/decode of Msg64Cereal as ipckit's Queue does them, memcpy
//    of 64 bytes; the realistic object's put+get through ipckit and through
//    Boost + the user's cereal, and each one's encode and decode; the ring's
//    own steps (put alone, get alone, of a plain item of 64 / 150 bytes, in
//    batches of 1024). A last table adds the serialized paths' steps
//    (encode + ring put + ring get + decode) beside their measured put+get.
//    Shows where the time of a message goes when nothing is contended
//    (CPU time of the process, so preemption by other programs is not counted).
//
// Link probe: before every two-process pinned run, the two children spin a
// shared word back and forth 2000 times and record the median round trip
// ("link ns"). On a virtual machine this moves by several times with where
// the host places the two vCPUs (measured here: ~100 ns or ~400 ns, for
// seconds to minutes at a time), and every two-process row moves with it.
// Hence ratios are paired: "vs floor" / "vs Boost" are the median over rounds
// of row / other row in the same round (rows of a round run back to back).
//
// --rt N runs the measured children SCHED_FIFO (root only): on a machine that
// other programs keep busy, they then cannot preempt the rows.
//
// Output: tables, then machine-readable lines for scripts/bench.sh:
//   RESULT q1_<row> <msg/s> msg_per_s min=<> max=<>       (qr_<row>: realistic)
//   RESULT q1_paired_<row>_vs_<raw_ring|boost_mq> <median ratio> ratio min=<> max=<>
//          (also qr_paired_<row>_vs_boost_mq_cereal, big_paired_<row>_vs_raw_copy,
//          mpmc_paired_<row>_vs_boost_mq; the pinned pass: q1pin_, qrpin_, rtpin_, bigpin_)
//   RESULT rt_<row>_median <us> us min=<> max=<>      (and rt_<row>_p99)
//   RESULT big_<row> <bytes/s> bytes_per_s min=<> max=<>
//   RESULT mpmc_<row> <msg/s> msg_per_s min=<> max=<>
//   RESULT idle_queue_<row>_cpu <% of a core, worst run> pct_core min=<> median=<>
//   RESULT cost_<row> <ns> ns_per_op min=<> max=<>
// A row that fails prints no RESULT line; the program then exits with 1.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <array>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/streams/bufferstream.hpp>
#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cinttypes>
#include <cstdarg>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
#include <ipckit/queue.hpp>
#include <ipckit/segment.hpp>
#endif

#include "bench_common.hpp"

namespace bip = boost::interprocess;
using namespace bench;

namespace {

// ---------------------------------------------------------------------------
// Parameters.

struct Params {
  std::int64_t messages = 1'000'000;     // oneway, timed
  std::int64_t real_messages = 300'000;  // realistic, timed
  std::int64_t warm_messages = 20'000;   // oneway, untimed (more than a ring's worth)
  std::size_t capacity = std::size_t{1} << 20;
  std::int64_t trips = 20'000;      // pingpong rows that spin
  std::int64_t slow_trips = 5'000;  // pingpong rows that always sleep (Boost)
  std::int64_t warm_trips = 500;
  std::int64_t big_messages = 1'000;
  std::int64_t big_warm = 16;
  std::size_t big_size = std::size_t{1} << 20;
  std::size_t big_capacity = std::size_t{4} << 20;
  int big_slots = 4;
  std::int64_t mpmc_messages = 400'000;  // in all, over 4 producers
  int idle_runs = 2;
  int idle_ms = 2000;
  std::int64_t cost_iterations = 2'000'000;
};
Params P;

bool g_verbose = false;
int g_quiet_wait_ms = 1000;
int g_timeout_s = 60;
int g_busy_runs = 0;
int g_unspread_runs = 0;
int g_rt_prio = 0;        // > 0: the measured children run SCHED_FIFO at this priority (--rt)
std::vector<int> g_cpus;  // the two CPUs that pinned rows use (empty: not pinned)
bool g_pin = true;        // this pass pins the two sides of a two-process row (when g_cpus has two)

// printf into a std::string (for the tables' titles).
[[gnu::format(printf, 1, 2)]] std::string strf(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string unique_name(const char* what) {
  static int seq = 0;
  return std::string("qbench_") + what + "_" + std::to_string(getpid()) + "_" + std::to_string(++seq);
}

// ---------------------------------------------------------------------------
// The message.

struct Msg64 {
  std::array<char, 56> data;
  std::uint64_t seq;
};
static_assert(sizeof(Msg64) == 64);

// The same bytes with a cereal serialize(): ipckit then encodes through cereal
// (the ipckit_queue_cereal rows) instead of copying the plain struct.
struct Msg64Cereal : Msg64 {
  template <class Archive>
  void serialize(Archive& ar) {
    ar(data, seq);  // cereal writes the char array as one 56-byte block
  }
};
static_assert(sizeof(Msg64Cereal) == 64);

Msg64 blank_msg() {
  Msg64 m{};
  m.data.fill('x');
  m.seq = 0;
  return m;
}
inline void stamp(Msg64& m, std::uint64_t seq) {
  m.seq = seq;
  m.data[0] = static_cast<char>(seq);
  m.data[55] = static_cast<char>(seq >> 8);
}
inline bool intact(const Msg64& m, std::uint64_t seq) {
  return m.seq == seq && m.data[0] == static_cast<char>(seq) && m.data[55] == static_cast<char>(seq >> 8) &&
         m.data[1] == 'x' && m.data[54] == 'x';
}
[[noreturn]] void bad_msg(const Msg64& m, std::uint64_t want) {
  throw std::runtime_error("message " + std::to_string(want) + " arrived as seq " + std::to_string(m.seq) +
                           " (or with a damaged payload)");
}
void init_msg(Msg64& m) { m = blank_msg(); }

// A realistic object (the realistic rows): a name, a few numbers and a small
// table, 150 bytes in cereal's binary archive: the name 8 + 14 bytes, the
// vector 8 + 10 x 4, the map 8 + 4 x (8 + 6 + 4). values[0] and the name's
// last letter carry the sequence number.
struct Realistic {
  std::string name;
  std::vector<int> values;
  std::map<std::string, int> counts;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, counts);
  }
};
constexpr std::size_t kRealisticBytes = 150;  // checked by the cost rows' encode
constexpr std::size_t kRealisticMax = 256;    // Boost's message size for it

void init_msg(Realistic& r) {
  r.name = "sensor-0042-aa";
  r.values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r.counts = {{"apples", 1}, {"grapes", 2}, {"lemons", 3}, {"mangos", 4}};
}
inline void stamp(Realistic& r, std::uint64_t seq) {
  r.values[0] = static_cast<int>(seq);
  r.name.back() = static_cast<char>('a' + seq % 26);
}
inline bool intact(const Realistic& r, std::uint64_t seq) {
  return r.values.size() == 10 && r.values[0] == static_cast<int>(seq) && r.values[9] == 9 && r.name.size() == 14 &&
         r.name.back() == static_cast<char>('a' + seq % 26) && r.counts.size() == 4 && r.counts.rbegin()->second == 4;
}
[[noreturn]] void bad_msg(const Realistic& r, std::uint64_t want) {
  throw std::runtime_error("realistic message " + std::to_string(want) + " arrived as " +
                           (r.values.empty() ? std::string("empty") : std::to_string(r.values[0])) +
                           " (or with a damaged name, vector or map)");
}

// ---------------------------------------------------------------------------
// The floors: a spinning SPSC ring of 64-byte slots, and K shared buffers.

struct RawRingHeader {
  alignas(64) std::atomic<std::uint64_t> tail{0};  // slots published (producer writes)
  alignas(64) std::atomic<std::uint64_t> head{0};  // slots freed (consumer writes)
};

// One process's handle (its cached copies of the other side's index are
// private: each forked child has its own).
class RawRing {
 public:
  explicit RawRing(std::size_t capacity_bytes)
      : slots_n_(std::max<std::size_t>(capacity_bytes / sizeof(Msg64), 2)),
        mem_(std::make_shared<SharedBytes>(128 + slots_n_ * sizeof(Msg64))) {
    if ((slots_n_ & (slots_n_ - 1)) != 0) throw std::invalid_argument("raw ring: slots must be a power of two");
    h_ = new (mem_->get()) RawRingHeader();
    slots_ = reinterpret_cast<Msg64*>(static_cast<char*>(mem_->get()) + 128);
  }
  void put(const Msg64& m) {
    if (tail_ - head_cache_ == slots_n_) {
      while ((head_cache_ = h_->head.load(std::memory_order_acquire)) + slots_n_ == tail_) cpu_relax();
    }
    slots_[tail_ & (slots_n_ - 1)] = m;
    h_->tail.store(++tail_, std::memory_order_release);
  }
  void get(Msg64& m) {
    if (head_ == tail_cache_) {
      while ((tail_cache_ = h_->tail.load(std::memory_order_acquire)) == head_) cpu_relax();
    }
    m = slots_[head_ & (slots_n_ - 1)];
    h_->head.store(++head_, std::memory_order_release);
  }

 private:
  std::size_t slots_n_;
  std::shared_ptr<SharedBytes> mem_;
  RawRingHeader* h_ = nullptr;
  Msg64* slots_ = nullptr;
  std::uint64_t tail_ = 0, head_cache_ = 0;  // producer's
  std::uint64_t head_ = 0, tail_cache_ = 0;  // consumer's
};

struct alignas(64) CopyFlag {
  std::atomic<std::uint32_t> full{0};
};

class RawCopy {
 public:
  RawCopy(std::size_t size, int slots)
      : size_(size),
        slots_(slots),
        stride_((size + 4095) & ~std::size_t{4095}),
        mem_(std::make_shared<SharedBytes>(4096 + stride_ * static_cast<std::size_t>(slots))) {
    if (slots < 1 || static_cast<std::size_t>(slots) * sizeof(CopyFlag) > 4096)
      throw std::invalid_argument("raw copy: 1..64 slots");
    flags_ = new (mem_->get()) CopyFlag[static_cast<std::size_t>(slots)];
  }
  void put(const char* src) {
    put_with([&](char* at) { std::memcpy(at, src, size_); });
  }
  void get(char* dst) {
    get_with([&](const char* at) { std::memcpy(dst, at, size_); });
  }
  // write(at) fills the next free buffer in place; read(at) reads the next full one in place.
  template <class Write>
  void put_with(Write&& write) {
    const int k = static_cast<int>(next_put_++ % static_cast<std::uint64_t>(slots_));
    while (flags_[k].full.load(std::memory_order_acquire) != 0) cpu_relax();
    write(buf(k));
    flags_[k].full.store(1, std::memory_order_release);
  }
  template <class Read>
  void get_with(Read&& read) {
    const int k = static_cast<int>(next_get_++ % static_cast<std::uint64_t>(slots_));
    while (flags_[k].full.load(std::memory_order_acquire) == 0) cpu_relax();
    read(static_cast<const char*>(buf(k)));
    flags_[k].full.store(0, std::memory_order_release);
  }

 private:
  char* buf(int k) const { return static_cast<char*>(mem_->get()) + 4096 + stride_ * static_cast<std::size_t>(k); }
  std::size_t size_;
  int slots_;
  std::size_t stride_;
  std::shared_ptr<SharedBytes> mem_;
  CopyFlag* flags_ = nullptr;
  std::uint64_t next_put_ = 0, next_get_ = 0;
};

// A Boost message_queue, created by the parent, removed afterwards.
struct BoostMq {
  std::string name;
  std::unique_ptr<bip::message_queue> q;
  BoostMq(std::size_t max_msgs, std::size_t msg_size) : name(unique_name("boost")) {
    bip::message_queue::remove(name.c_str());
    q = std::make_unique<bip::message_queue>(bip::create_only, name.c_str(), max_msgs, msg_size);
  }
  ~BoostMq() {
    q.reset();
    bip::message_queue::remove(name.c_str());
  }
  void put(const Msg64& m) { q->send(&m, sizeof m, 0); }
  void get(Msg64& m) {
    bip::message_queue::size_type got = 0;
    unsigned prio = 0;
    q->receive(&m, sizeof m, got, prio);
    if (got != sizeof m) throw std::runtime_error("boost message_queue: got " + std::to_string(got) + " bytes");
  }
};

// What a Boost user writes to send a struct with a cereal serialize(): the
// binary archive over a stream on a fixed buffer (Boost's own bufferstream,
// reused: no allocation, no copy of the bytes), message_queue send of the
// bytes; on receipt the reverse into a fresh object, as Queue::get() returns
// one. Made by the parent; each forked side uses its own copy of the buffers.
class BoostCerealMq {
 public:
  explicit BoostCerealMq(std::size_t max_msgs) : mq_(max_msgs, kRealisticMax) {}
  BoostCerealMq(const BoostCerealMq&) = delete;
  BoostCerealMq& operator=(const BoostCerealMq&) = delete;
  std::size_t encode(const Realistic& r) {  // into obuf_; cereal throws if it does not fit
    out_.seekp(0);
    cereal::BinaryOutputArchive ar(out_);
    ar(r);
    return static_cast<std::size_t>(out_.tellp());
  }
  void decode(const char* p, std::size_t n, Realistic& r) {
    in_.buffer(const_cast<char*>(p), n);  // read only: ibufferstream's setter takes char*
    Realistic fresh;
    cereal::BinaryInputArchive ar(in_);
    ar(fresh);
    r = std::move(fresh);
  }
  const char* encoded() const { return obuf_.data(); }
  void put(const Realistic& r) { mq_.q->send(obuf_.data(), encode(r), 0); }
  void get(Realistic& r) {
    bip::message_queue::size_type got = 0;
    unsigned prio = 0;
    mq_.q->receive(ibuf_.data(), ibuf_.size(), got, prio);
    decode(ibuf_.data(), got, r);
  }

 private:
  BoostMq mq_;
  std::array<char, kRealisticMax> obuf_{}, ibuf_{};
  bip::obufferstream out_{obuf_.data(), obuf_.size()};
  bip::ibufferstream in_{ibuf_.data(), ibuf_.size()};
};

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
// An ipckit segment made for one run and removed with its last handle.
struct IpckitSeg {
  std::string name;
  std::optional<ipckit::Segment> seg;
  explicit IpckitSeg(std::size_t bytes) : name(unique_name("ipckit")) {
    seg.emplace(ipckit::Segment::create(name, bytes));
  }
  ~IpckitSeg() {
    seg.reset();
    ipckit::Segment::remove(name);
  }
};
std::size_t seg_bytes_for(std::size_t queue_capacity, int queues) {
  return static_cast<std::size_t>(queues) * (queue_capacity + (std::size_t{1} << 20)) + (std::size_t{1} << 20);
}
#endif

// ---------------------------------------------------------------------------
// Running a set of processes.

constexpr int kMaxProcs = 8;

struct alignas(64) Slot {
  std::atomic<int> cpu{-1};
  std::atomic<std::int64_t> progress{0};
  std::atomic<std::int64_t> started_ns{0};
  std::atomic<std::int64_t> finished_ns{0};
  std::atomic<long> vol{0}, invol{0};
};

struct Control {
  alignas(64) std::atomic<std::uint32_t> probe{0};  // the link-latency probe's word
  std::atomic<std::int64_t> link_ns{0};             // its median round trip
  alignas(64) std::atomic<int> ready{0};
  alignas(64) std::atomic<int> go{0};
  alignas(64) std::atomic<int> producers_done{0};
  Slot slot[kMaxProcs];
};

// What one run does: `procs` children, each given its role (0..procs-1).
struct Job {
  int procs = 2;
  bool pin = true;                                             // roles 0 and 1 on two different CPUs
  std::function<void(int role)> warm;                          // in the child, before the start line
  std::function<void(int role, Slot& me, Control& ctl)> work;  // in the child, timed
  std::function<void()> verify;                                // in the parent, after; throws
  std::function<void()> cleanup;                               // in the parent, after
  std::shared_ptr<SharedBytes> stamps;                         // ping-pong: A's clock reads
  std::function<std::string(int role)> role_name;
};

struct RunResult {
  double link_ns = 0;  // median spin round trip between the two pinned children just before the run
  std::int64_t t0 = 0;
  std::int64_t finished[kMaxProcs] = {};
  long vol = 0, invol = 0;
  bool quiet = true, spread = true;
};

[[noreturn]] void child_fail(const std::string& mode, int role, const char* what) {
  std::fprintf(stderr, "queue_bench: %s: child %d (role %d) failed: %s\n", mode.c_str(), getpid(), role, what);
  std::fflush(stderr);
  _exit(3);
}

// How fast the two pinned CPUs hand a cache line back and forth right now:
// the median of kProbeTrips spin round trips through one shared word. On a
// virtual machine this changes with where the host runs the two vCPUs (the
// same physical core, or two cores apart), by several times, and every
// two-process row moves with it; the tables print it beside each row.
constexpr int kProbeTrips = 2000;
void probe_link(int role, Control& ctl) {
  std::vector<std::int64_t> rt;
  if (role == 0) rt.reserve(kProbeTrips);
  for (std::uint32_t i = 0; i < kProbeTrips; ++i) {
    if (role == 0) {
      const std::int64_t t = now_ns();
      ctl.probe.store(2 * i + 1, std::memory_order_release);
      while (ctl.probe.load(std::memory_order_acquire) != 2 * i + 2) cpu_relax();
      rt.push_back(now_ns() - t);
    } else {
      while (ctl.probe.load(std::memory_order_acquire) != 2 * i + 1) cpu_relax();
      ctl.probe.store(2 * i + 2, std::memory_order_release);
    }
  }
  if (role == 0) {
    std::nth_element(rt.begin(), rt.begin() + kProbeTrips / 2, rt.end());
    ctl.link_ns.store(rt[kProbeTrips / 2], std::memory_order_relaxed);
  }
}

RunResult run_job(const std::string& name, Job& job) {
  RunResult res;
  // Once three waits in a row found the machine busy, other programs keep it
  // so: each run then only samples it (20 ms) instead of waiting in vain.
  static int busy_streak = 0;
  res.quiet = wait_for_quiet(busy_streak >= 3 ? std::min(g_quiet_wait_ms, 20) : g_quiet_wait_ms);
  busy_streak = res.quiet ? 0 : busy_streak + 1;
  if (!res.quiet) ++g_busy_runs;
  SharedBlock<Control> ctl;
  struct CleanupAtEnd {
    Job& j;
    ~CleanupAtEnd() {
      if (j.cleanup) j.cleanup();
    }
  } cleanup_at_end{job};
  Children kids;  // destroyed (children killed) before the cleanup above
  const bool pinned = job.pin && g_pin && g_cpus.size() >= 2;
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  for (int role = 0; role < job.procs; ++role) {
    kids.spawn([&, role] {
      try {
        if (pinned && role < 2) pin_to(g_cpus[static_cast<std::size_t>(role)]);
        if (job.warm) job.warm(role);
        if (g_rt_prio > 0) {
          sched_param sp{};
          sp.sched_priority = g_rt_prio;
          if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
            throw std::runtime_error(std::string("sched_setscheduler(SCHED_FIFO): ") + std::strerror(errno));
        }
        if (pinned && job.procs == 2) probe_link(role, *ctl);
        Slot& me = ctl->slot[role];
        ctl->ready.fetch_add(1, std::memory_order_acq_rel);
        // Busy-wait so that the scheduler spreads the children over the
        // CPUs; yield when there are more children than CPUs. Real-time
        // children poll between short sleeps instead: spinning, they would
        // keep the parent (not real-time) from ever raising the flag.
        while (ctl->go.load(std::memory_order_acquire) == 0) {
          me.cpu.store(sched_getcpu(), std::memory_order_relaxed);
          if (g_rt_prio > 0) {
            usleep(20);
          } else if (job.procs > ncpu) {
            sched_yield();
          } else {
            for (int k = 0; k < 16; ++k) cpu_relax();
          }
        }
        me.started_ns.store(now_ns(), std::memory_order_relaxed);
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        job.work(role, me, *ctl);
        me.finished_ns.store(now_ns(), std::memory_order_release);
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        me.vol.store(after.ru_nvcsw - before.ru_nvcsw);
        me.invol.store(after.ru_nivcsw - before.ru_nivcsw);
      } catch (const std::exception& e) {
        child_fail(name, role, e.what());
      } catch (...) {
        child_fail(name, role, "unknown exception");
      }
      _exit(0);
    });
  }
  const std::int64_t give_up = now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000;
  while (ctl->ready.load(std::memory_order_acquire) < job.procs) {
    if (kids.any_exited()) throw std::runtime_error("a child process failed before the start (see above)");
    if (now_ns() > give_up) throw std::runtime_error("the children never reached the start line");
    usleep(100);
  }
  if (pinned) {
    // Release only once both spin on their CPUs (bounded: 0.5 s).
    const std::int64_t until = now_ns() + 500'000'000;
    int apart = 0;
    while (apart < 3 && now_ns() < until) {
      usleep(1000);
      const int c0 = ctl->slot[0].cpu.load(), c1 = ctl->slot[1].cpu.load();
      apart = (c0 >= 0 && c1 >= 0 && c0 != c1) ? apart + 1 : 0;
    }
    res.spread = apart >= 3;
    if (!res.spread) ++g_unspread_runs;
  }
  res.t0 = now_ns();
  ctl->go.store(1, std::memory_order_release);

  bool timed_out = false;
  const bool ok = kids.wait_all(now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000, &timed_out);
  if (timed_out) {
    std::string where;
    for (int r = 0; r < job.procs; ++r) {
      where += (r ? ", " : "") + (job.role_name ? job.role_name(r) : "role " + std::to_string(r)) + " at " +
               std::to_string(ctl->slot[r].progress.load());
    }
    throw std::runtime_error("no finish within " + std::to_string(g_timeout_s) + " s (" + where +
                             "): a lost wake-up or a deadlock");
  }
  if (!ok) throw std::runtime_error("a child process failed (see above)");
  if (g_rt_prio > 0) {
    // The children woke from their sleeps some microseconds after the flag:
    // time from the first one's start instead.
    std::int64_t first = INT64_MAX;
    for (int r = 0; r < job.procs; ++r) first = std::min(first, ctl->slot[r].started_ns.load());
    res.t0 = first;
  }
  res.link_ns = static_cast<double>(ctl->link_ns.load());
  for (int r = 0; r < job.procs; ++r) {
    res.finished[r] = ctl->slot[r].finished_ns.load();
    res.vol += ctl->slot[r].vol.load();
    res.invol += ctl->slot[r].invol.load();
  }
  if (job.verify) job.verify();
  return res;
}

struct Mode {
  std::string name;
  std::string label;
  std::function<Job()> make;
  bool slow = false;  // ping-pong: sleeps every round trip (fewer of them)
};

// A Job over one ipckit queue in a fresh segment sized for `bytes`: `open`
// makes the queue, `make(q)` the Job; the Job's cleanup drops both.
template <class Q, class Open, class Make>
Job ipckit_job(std::size_t bytes, Open open, Make make) {
  auto s = std::make_shared<IpckitSeg>(seg_bytes_for(bytes, 1));
  auto q = std::make_shared<Q>(open(*s->seg));
  Job j = make(q);
  j.cleanup = [s, q]() mutable {
    q.reset();
    s.reset();
  };
  return j;
}

// The queue of the 64-byte rows.
ipckit::Queue<Msg64> open_msg64_queue(ipckit::Segment& seg) {
  return seg.queue<Msg64>("q", {.capacity_bytes = P.capacity});
}

std::map<std::string, std::string> g_failed;  // row -> why

// Runs every mode `runs` times (after `warmup` unmeasured rounds), interleaved.
template <class Sample, class RunOne>
std::map<std::string, std::vector<Sample>> interleave(const char* part, const std::vector<const Mode*>& modes, int runs,
                                                      int warmup, RunOne&& run_one) {
  std::map<std::string, std::vector<Sample>> out;
  const std::size_t M = modes.size();
  for (int round = -warmup; round < runs && M > 0; ++round) {
    for (std::size_t j = 0; j < M; ++j) {
      const Mode& m = *modes[(j + static_cast<std::size_t>(round + warmup)) % M];
      const std::string key = std::string(part) + ":" + m.name;
      if (g_failed.count(key)) continue;
      try {
        Sample s = run_one(m);
        s.round = round;
        if (round >= 0) out[m.name].push_back(s);
      } catch (const std::exception& e) {
        g_failed[key] = e.what();
        std::fprintf(stderr, "queue_bench: %s %s: FAILED: %s\n", part, m.name.c_str(), e.what());
      }
    }
  }
  return out;
}

std::string note(const RunResult& r) {
  std::string s;
  if (!r.spread) s += "; NOT on 2 CPUs at release";
  if (!r.quiet) s += "; machine was busy";
  return s;
}

// ---------------------------------------------------------------------------
// Part 1: one-way 64-byte throughput.

// `n` timed messages of type M (Msg64 or Realistic) after P.warm_messages.
template <class M = Msg64, class Put, class Get>
Job oneway_job(Put put, Get get, std::int64_t n = P.messages) {
  Job j;
  const std::int64_t W = P.warm_messages, N = n;
  j.role_name = [](int r) { return std::string(r == 0 ? "producer" : "consumer"); };
  j.warm = [=](int role) {
    M m;
    init_msg(m);
    for (std::int64_t i = 0; i < W; ++i) {
      if (role == 0) {
        stamp(m, static_cast<std::uint64_t>(i));
        put(m);
      } else {
        get(m);
        if (!intact(m, static_cast<std::uint64_t>(i))) bad_msg(m, static_cast<std::uint64_t>(i));
      }
    }
  };
  j.work = [=](int role, Slot& me, Control&) {
    M m;
    init_msg(m);
    for (std::int64_t i = W; i < W + N; ++i) {
      if (role == 0) {
        stamp(m, static_cast<std::uint64_t>(i));
        put(m);
      } else {
        get(m);
        if (!intact(m, static_cast<std::uint64_t>(i))) bad_msg(m, static_cast<std::uint64_t>(i));
      }
      if ((i & 4095) == 0) me.progress.store(i - W, std::memory_order_relaxed);
    }
    me.progress.store(N, std::memory_order_relaxed);
  };
  return j;
}

std::vector<Mode> oneway_modes() {
  std::vector<Mode> modes;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  modes.push_back({"ipckit_queue", "ipckit Queue<Msg64> (plain struct: copied)", [] {
                     return ipckit_job<ipckit::Queue<Msg64>>(P.capacity, open_msg64_queue, [&](auto q) {
                       return oneway_job([q](const Msg64& m) { q->put(m); }, [q](Msg64& m) { m = q->get(); });
                     });
                   }});
  modes.push_back({"ipckit_queue_batch", "ipckit Queue<Msg64> put_many/get_many, batches of 16", [] {
                     return ipckit_job<ipckit::Queue<Msg64>>(P.capacity, open_msg64_queue, [&](auto q) {
                       // Each side batches on its own: the producer flushes every 16th
                       // message and the last one; the consumer refills when it runs out.
                       const auto last = static_cast<std::uint64_t>(P.warm_messages + P.messages - 1);
                       auto out = std::make_shared<std::vector<Msg64>>();
                       auto in = std::make_shared<std::vector<Msg64>>();
                       auto next = std::make_shared<std::size_t>(0);
                       Job j = oneway_job(
                           [q, out, last](const Msg64& m) {
                             out->push_back(m);
                             if (out->size() == 16 || m.seq == last ||
                                 m.seq + 1 == static_cast<std::uint64_t>(P.warm_messages)) {
                               q->put_many(*out);
                               out->clear();
                             }
                           },
                           [q, in, next](Msg64& m) {
                             if (*next == in->size()) {
                               *in = q->get_many(16);
                               *next = 0;
                             }
                             m = (*in)[(*next)++];
                           });
                       return j;
                     });
                   }});
  modes.push_back({"ipckit_queue_cereal", "ipckit Queue<Msg64Cereal> (cereal serialize())", [] {
                     const auto open = [&](ipckit::Segment& seg) {
                       return seg.queue<Msg64Cereal>("q", {.capacity_bytes = P.capacity});
                     };
                     return ipckit_job<ipckit::Queue<Msg64Cereal>>(P.capacity, open, [&](auto q) {
                       Job j =
                           oneway_job([q](const Msg64& m) { q->put(Msg64Cereal{m}); }, [q](Msg64& m) { m = q->get(); });
                       return j;
                     });
                   }});
  modes.push_back(
      {"ipckit_byte_queue", "ipckit ByteQueue, 64 bytes", [] {
         const auto open = [&](ipckit::Segment& seg) { return seg.byte_queue("q", {.capacity_bytes = P.capacity}); };
         return ipckit_job<ipckit::ByteQueue>(P.capacity, open, [&](auto q) {
           Job j = oneway_job(
               [q](const Msg64& m) { q->put(std::string_view(reinterpret_cast<const char*>(&m), sizeof m)); },
               [q](Msg64& m) {
                 const std::string b = q->get();
                 if (b.size() != sizeof m)
                   throw std::runtime_error("byte queue: " + std::to_string(b.size()) + " bytes");
                 std::memcpy(&m, b.data(), sizeof m);
               });
           return j;
         });
       }});
#endif
  modes.push_back({"boost_mq", "Boost message_queue, 64 B", [] {
                     auto b = std::make_shared<BoostMq>(P.capacity / sizeof(Msg64), sizeof(Msg64));
                     Job j = oneway_job([b](const Msg64& m) { b->put(m); }, [b](Msg64& m) { b->get(m); });
                     j.cleanup = [b]() mutable { b.reset(); };
                     return j;
                   }});
  modes.push_back({"raw_ring", "floor: raw SPSC ring, spinning", [] {
                     auto r = std::make_shared<RawRing>(P.capacity);
                     return oneway_job([r](const Msg64& m) { r->put(m); }, [r](Msg64& m) { r->get(m); });
                   }});
  return modes;
}

struct RateSample {
  int round = 0;  // which interleaved round (rows of one round ran back to back)
  double per_s = 0;
  double link_ns = 0;  // the probe's round trip before the run (0: not probed)
  double sleeps = 0;   // voluntary context switches, all children, per 1000 messages
};

// One run of a two-process throughput row: `messages` from the producer
// (role 0) to the consumer (role 1), each worth `units` (1, or its bytes).
RateSample run_rate(const char* part, const Mode& m, std::int64_t messages, double units, double scale,
                    const char* unit) {
  Job j = m.make();
  RunResult r = run_job(m.name, j);
  RateSample s;
  const double secs = static_cast<double>(r.finished[1] - r.t0) * 1e-9;
  s.per_s = static_cast<double>(messages) * units / secs;
  s.link_ns = r.link_ns;
  s.sleeps = 1000.0 * static_cast<double>(r.vol) / static_cast<double>(messages);
  if (g_verbose)
    std::fprintf(stderr, "  %s %-20s %8.3f %s  %.1f ms  link %4.0f ns  sleeps %ld  preempted %ld%s\n", part,
                 m.name.c_str(), s.per_s / scale, unit, secs * 1e3, r.link_ns, r.vol, r.invol, note(r).c_str());
  return s;
}
RateSample run_oneway(const Mode& m) { return run_rate("oneway", m, P.messages, 1, 1e6, "M msg/s"); }

// ---------------------------------------------------------------------------
// Part 1b: one-way throughput of a realistic object (Realistic, 150 bytes
// encoded): ipckit Queue<Realistic> beside Boost message_queue carrying the
// bytes the user's own cereal code makes (BoostCerealMq). Python's
// multiprocessing.Queue with the equivalent dict is bench/python_queue.py's.

std::vector<Mode> realistic_modes() {
  std::vector<Mode> modes;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  modes.push_back({"ipckit_queue", "ipckit Queue<Realistic> (cereal serialize())", [] {
                     const auto open = [](ipckit::Segment& seg) {
                       return seg.queue<Realistic>("q", {.capacity_bytes = P.capacity});
                     };
                     return ipckit_job<ipckit::Queue<Realistic>>(P.capacity, open, [](auto q) {
                       return oneway_job<Realistic>([q](const Realistic& r) { q->put(r); },
                                                    [q](Realistic& r) { r = q->get(); }, P.real_messages);
                     });
                   }});
#endif
  modes.push_back({"boost_mq_cereal", "Boost message_queue + user's cereal code", [] {
                     auto b = std::make_shared<BoostCerealMq>(P.capacity / kRealisticMax);
                     Job j = oneway_job<Realistic>([b](const Realistic& r) { b->put(r); },
                                                   [b](Realistic& r) { b->get(r); }, P.real_messages);
                     j.cleanup = [b]() mutable { b.reset(); };
                     return j;
                   }});
  return modes;
}
RateSample run_realistic(const Mode& m) { return run_rate("realistic", m, P.real_messages, 1, 1e6, "M msg/s"); }

// ---------------------------------------------------------------------------
// Part 2: ping-pong.

template <class PutAB, class GetAB, class PutBA, class GetBA>
Job pingpong_job(std::int64_t n, PutAB put_ab, GetAB get_ab, PutBA put_ba, GetBA get_ba) {
  Job j;
  const std::int64_t skip = P.warm_trips, total = P.warm_trips + n;
  j.stamps = std::make_shared<SharedBytes>(static_cast<std::size_t>(n + 1) * sizeof(std::int64_t));
  auto* stamps = static_cast<std::int64_t*>(j.stamps->get());
  j.role_name = [](int r) { return std::string(r == 0 ? "A (round trips done)" : "B (answers)"); };
  j.warm = [=](int role) {
    if (role == 0) std::memset(stamps, 0, static_cast<std::size_t>(n + 1) * sizeof(std::int64_t));
  };
  j.work = [=](int role, Slot& me, Control&) {
    Msg64 m = blank_msg();
    if (role == 0) {
      for (std::int64_t i = 0; i < total; ++i) {
        if (i >= skip) stamps[i - skip] = now_ns();
        stamp(m, static_cast<std::uint64_t>(i));
        put_ab(m);
        get_ba(m);
        if (!intact(m, static_cast<std::uint64_t>(i))) bad_msg(m, static_cast<std::uint64_t>(i));
        me.progress.store(i + 1, std::memory_order_relaxed);
      }
      stamps[total - skip] = now_ns();
    } else {
      for (std::int64_t i = 0; i < total; ++i) {
        get_ab(m);
        if (!intact(m, static_cast<std::uint64_t>(i))) bad_msg(m, static_cast<std::uint64_t>(i));
        put_ba(m);
        me.progress.store(i + 1, std::memory_order_relaxed);
      }
    }
  };
  return j;
}

std::vector<Mode> pingpong_modes() {
  std::vector<Mode> modes;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  modes.push_back(
      {"ipckit_queue", "ipckit Queue<Msg64> x2", [] {
         auto s = std::make_shared<IpckitSeg>(seg_bytes_for(P.capacity, 2));
         auto ab = std::make_shared<ipckit::Queue<Msg64>>(s->seg->queue<Msg64>("ab", {.capacity_bytes = P.capacity}));
         auto ba = std::make_shared<ipckit::Queue<Msg64>>(s->seg->queue<Msg64>("ba", {.capacity_bytes = P.capacity}));
         Job j = pingpong_job(
             P.trips, [ab](const Msg64& m) { ab->put(m); }, [ab](Msg64& m) { m = ab->get(); },
             [ba](const Msg64& m) { ba->put(m); }, [ba](Msg64& m) { m = ba->get(); });
         j.cleanup = [s, ab, ba]() mutable {
           ab.reset();
           ba.reset();
           s.reset();
         };
         return j;
       }});
#endif
  modes.push_back({"boost_mq", "Boost message_queue x2",
                   [] {
                     auto ab = std::make_shared<BoostMq>(P.capacity / sizeof(Msg64), sizeof(Msg64));
                     auto ba = std::make_shared<BoostMq>(P.capacity / sizeof(Msg64), sizeof(Msg64));
                     Job j = pingpong_job(
                         P.slow_trips, [ab](const Msg64& m) { ab->put(m); }, [ab](Msg64& m) { ab->get(m); },
                         [ba](const Msg64& m) { ba->put(m); }, [ba](Msg64& m) { ba->get(m); });
                     j.cleanup = [ab, ba]() mutable {
                       ab.reset();
                       ba.reset();
                     };
                     return j;
                   },
                   true});
  modes.push_back({"raw_spin", "floor: raw rings x2, spinning", [] {
                     auto ab = std::make_shared<RawRing>(P.capacity);
                     auto ba = std::make_shared<RawRing>(P.capacity);
                     return pingpong_job(
                         P.trips, [ab](const Msg64& m) { ab->put(m); }, [ab](Msg64& m) { ab->get(m); },
                         [ba](const Msg64& m) { ba->put(m); }, [ba](Msg64& m) { ba->get(m); });
                   }});
  return modes;
}

struct RtSample {
  int round = 0;
  double link_ns = 0;
  double median_us = 0, p99_us = 0, max_us = 0;
  double sleeps_per_rt = 0;
};

RtSample run_pingpong(const Mode& m) {
  Job j = m.make();
  RunResult r = run_job(m.name, j);
  const std::int64_t n = m.slow ? P.slow_trips : P.trips;
  const auto* st = static_cast<const std::int64_t*>(j.stamps->get());
  std::vector<double> rt(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) rt[static_cast<std::size_t>(i)] = static_cast<double>(st[i + 1] - st[i]) / 1e3;
  std::sort(rt.begin(), rt.end());
  RtSample s;
  s.link_ns = r.link_ns;
  s.median_us = quantile(rt, 0.5);
  s.p99_us = quantile(rt, 0.99);
  s.max_us = rt.back();
  s.sleeps_per_rt = static_cast<double>(r.vol) / static_cast<double>(n + P.warm_trips);
  if (g_verbose)
    std::fprintf(stderr,
                 "  pingpong %-16s median %8.2f us  p99 %8.2f us  max %9.1f us  link %4.0f ns  sleeps/rt %.3f%s\n",
                 m.name.c_str(), s.median_us, s.p99_us, s.max_us, r.link_ns, s.sleeps_per_rt, note(r).c_str());
  return s;
}

// ---------------------------------------------------------------------------
// Part 3: big messages.

inline void stamp_big(char* p, std::size_t n, std::uint64_t seq) {
  std::memcpy(p, &seq, 8);
  std::memcpy(p + n - 8, &seq, 8);
}
inline void check_big(const char* p, std::size_t n, std::uint64_t seq) {
  std::uint64_t a = 0, b = 0;
  if (n == P.big_size) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
  }
  if (n != P.big_size || a != seq || b != seq || p[8] != 'y')
    throw std::runtime_error("big message " + std::to_string(seq) + " arrived with " + std::to_string(n) +
                             " bytes, stamps " + std::to_string(a) + "/" + std::to_string(b));
}

// put(const char* p) sends P.big_size bytes; get(seq) receives and checks one.
template <class Put, class Get>
Job big_job(Put put, Get get) {
  Job j;
  const std::int64_t W = P.big_warm, N = P.big_messages;
  const std::size_t S = P.big_size;
  j.role_name = [](int r) { return std::string(r == 0 ? "producer" : "consumer"); };
  auto body = [=](int role, std::int64_t from, std::int64_t to, Slot* me) {
    thread_local std::vector<char> src;
    if (role == 0 && src.size() != S) src.assign(S, 'y');
    for (std::int64_t i = from; i < to; ++i) {
      if (role == 0) {
        stamp_big(src.data(), S, static_cast<std::uint64_t>(i));
        put(src.data());
      } else {
        get(static_cast<std::uint64_t>(i));
      }
      if (me) me->progress.store(i - from + 1, std::memory_order_relaxed);
    }
  };
  j.warm = [=](int role) { body(role, 0, W, nullptr); };
  j.work = [=](int role, Slot& me, Control&) { body(role, W, W + N, &me); };
  return j;
}

// The floor: `slots` shared buffers of the message size.
Job raw_copy_job(int slots) {
  auto c = std::make_shared<RawCopy>(P.big_size, slots);
  auto dst = std::make_shared<std::vector<char>>();
  return big_job([c](const char* p) { c->put(p); },
                 [c, dst](std::uint64_t seq) {
                   if (dst->size() != P.big_size) dst->assign(P.big_size, 0);
                   c->get(dst->data());
                   check_big(dst->data(), dst->size(), seq);
                 });
}

// Reads every byte of an item in place: are all the bytes between its two
// stamps the producer's 'y'? (The copying rows' consumers read every byte
// once through their copy out; the zero-copy rows read them once here.)
// Four independent words a step, so that the compiler makes it vector code;
// on x86-64 also an AVX2 clone picked at run time, as glibc's memcpy picks
// its AVX2 form: the read in place must not lose to the copy by codegen.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
bool payload_intact(const char* p, std::size_t n) {
  constexpr std::uint64_t kY = 0x7979797979797979;  // eight 'y'
  if (n < 16) return true;                          // no payload (check_big rejects the size)
  const char* b = p + 8;
  const std::size_t m = n - 16;
  std::uint64_t acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 32 <= m; i += 32) {
    for (std::size_t k = 0; k < 4; ++k) {
      std::uint64_t w = 0;
      std::memcpy(&w, b + i + 8 * k, 8);
      acc[k] |= w ^ kY;
    }
  }
  std::uint64_t diff = acc[0] | acc[1] | acc[2] | acc[3];
  for (; i < m; ++i) diff |= static_cast<unsigned char>(b[i]) ^ std::uint64_t{'y'};
  return diff == 0;
}

// The zero-copy rows' two halves: the producer writes the whole item in place
// (the bytes the other rows' items hold: 'y' and the two stamps, whose
// sequence number it takes from the stamped buffer `p` of big_job); the
// consumer checks every byte in place, and the stamps.
void write_item_in_place(char* at, const char* p) {
  std::uint64_t seq = 0;
  std::memcpy(&seq, p, 8);
  std::memset(at, 'y', P.big_size);
  stamp_big(at, P.big_size, seq);
}
void check_item_in_place(const char* at, std::size_t n, std::uint64_t seq) {
  if (!payload_intact(at, n))
    throw std::runtime_error("big message " + std::to_string(seq) + ": a payload byte is not 'y'");
  check_big(at, n, seq);
}

// The zero-copy floor: raw_copy's buffers, each item written and read in
// place as the loan row does (no queue, no copies).
Job raw_in_place_job() {
  auto c = std::make_shared<RawCopy>(P.big_size, P.big_slots);
  return big_job(
      [c](const char* p) { c->put_with([p](char* at) { write_item_in_place(at, p); }); },
      [c](std::uint64_t seq) { c->get_with([seq](const char* at) { check_item_in_place(at, P.big_size, seq); }); });
}

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
// Every big row's queue: the same ring (--big-capacity) and item bound.
ipckit::QueueOptions big_queue_options() {
  ipckit::QueueOptions o;
  o.capacity_bytes = P.big_capacity;
  o.max_message = P.big_size + 64;  // the item and cereal's length prefix
  return o;
}

// Zero-copy: a ByteQueue loan written in place, published, and read in place
// through get_view(). The producer writes the whole item into the loan: the
// other rows' item ('y' and the two stamps; `from_buffer` false), or, for
// reference, a memcpy of the producer's stamped buffer as the other rows' put
// does (true). The consumer checks every byte in place and the stamps, then
// releases the view.
Job loan_job(bool from_buffer) {
  const auto open = [](ipckit::Segment& seg) { return seg.byte_queue("q", big_queue_options()); };
  return ipckit_job<ipckit::ByteQueue>(P.big_capacity, open, [from_buffer](auto q) {
    return big_job(
        [q, from_buffer](const char* p) {
          ipckit::ByteLoan loan = q->loan(P.big_size);
          if (from_buffer) {
            std::memcpy(loan.data(), p, P.big_size);
          } else {
            write_item_in_place(loan.data(), p);
          }
          loan.publish();
        },
        [q](std::uint64_t seq) {
          ipckit::ByteView v = q->get_view();
          check_item_in_place(v.data(), v.size(), seq);
          v.release();
        });
  });
}
#endif

std::vector<Mode> big_modes() {
  std::vector<Mode> modes;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  const auto opts = big_queue_options;
  modes.push_back({"ipckit_queue_vec", "ipckit Queue<std::vector<char>>", [opts] {
                     const auto open = [&](ipckit::Segment& seg) { return seg.queue<std::vector<char>>("q", opts()); };
                     return ipckit_job<ipckit::Queue<std::vector<char>>>(P.big_capacity, open, [&](auto q) {
                       // The producer's vector is reused: put() takes a const&.
                       auto vec = std::make_shared<std::vector<char>>();
                       return big_job(
                           [q, vec](const char* p) {
                             if (vec->size() != P.big_size) vec->assign(p, p + P.big_size);
                             std::memcpy(vec->data(), p, 8);  // only the stamps change
                             std::memcpy(vec->data() + P.big_size - 8, p + P.big_size - 8, 8);
                             q->put(*vec);
                           },
                           [q](std::uint64_t seq) {
                             const std::vector<char> v = q->get();
                             check_big(v.data(), v.size(), seq);
                           });
                     });
                   }});
  modes.push_back({"ipckit_byte_queue", "ipckit ByteQueue", [opts] {
                     const auto open = [&](ipckit::Segment& seg) { return seg.byte_queue("q", opts()); };
                     return ipckit_job<ipckit::ByteQueue>(P.big_capacity, open, [&](auto q) {
                       Job j = big_job([q](const char* p) { q->put(std::string_view(p, P.big_size)); },
                                       [q](std::uint64_t seq) {
                                         const std::string v = q->get();
                                         check_big(v.data(), v.size(), seq);
                                       });
                       return j;
                     });
                   }});
  modes.push_back({"ipckit_queue_loan", "ipckit ByteQueue loan/view, in place", [] { return loan_job(false); }});
  modes.push_back({"ipckit_loan_copy_in", "the same, loan filled by memcpy", [] { return loan_job(true); }});
#endif
  modes.push_back({"raw_copy", "floor: memcpy in/out, shared buffers", [] { return raw_copy_job(P.big_slots); }});
  modes.push_back({"raw_copy_1slot", "raw: memcpy in/out, one buffer", [] { return raw_copy_job(1); }});
  modes.push_back({"raw_in_place", "raw: written/read in place, no copy", raw_in_place_job});
  return modes;
}

RateSample run_big(const Mode& m) {
  return run_rate("big", m, P.big_messages, static_cast<double>(P.big_size), 1e9, "GB/s");
}

// ---------------------------------------------------------------------------
// Part 4: 4 producers x 4 consumers.

constexpr int kMpmcSide = 4;
constexpr std::uint64_t kStop = ~std::uint64_t{0};
constexpr int kProducerShift = 40;

template <class Put, class Get>
Job mpmc_job(Put put, Get get) {
  Job j;
  j.procs = 2 * kMpmcSide;
  j.pin = false;
  const std::int64_t per = P.mpmc_messages / kMpmcSide;
  const std::int64_t total = per * kMpmcSide;
  // One table per consumer: seen[c][p * per + i] counts message i of producer p.
  auto seen = std::make_shared<SharedBytes>(static_cast<std::size_t>(total) * kMpmcSide);
  j.role_name = [](int r) {
    return (r < kMpmcSide ? "producer " + std::to_string(r) : "consumer " + std::to_string(r - kMpmcSide));
  };
  j.warm = [seen, total](int role) {
    if (role >= kMpmcSide)  // fault the table in
      std::memset(static_cast<char*>(seen->get()) + static_cast<std::size_t>(total) * (role - kMpmcSide), 0,
                  static_cast<std::size_t>(total));
  };
  j.work = [=](int role, Slot& me, Control& ctl) {
    Msg64 m = blank_msg();
    if (role < kMpmcSide) {
      const std::uint64_t tag = static_cast<std::uint64_t>(role) << kProducerShift;
      for (std::int64_t i = 0; i < per; ++i) {
        stamp(m, tag | static_cast<std::uint64_t>(i));
        put(m);
        if ((i & 4095) == 0) me.progress.store(i, std::memory_order_relaxed);
      }
      me.progress.store(per, std::memory_order_relaxed);
      // The last producer to finish sends one stop per consumer: it comes
      // after every message of every producer.
      if (ctl.producers_done.fetch_add(1, std::memory_order_acq_rel) + 1 == kMpmcSide) {
        for (int c = 0; c < kMpmcSide; ++c) {
          stamp(m, kStop);
          put(m);
        }
      }
    } else {
      auto* mine = static_cast<std::uint8_t*>(seen->get()) + static_cast<std::size_t>(total) * (role - kMpmcSide);
      std::int64_t last[kMpmcSide];
      std::fill(std::begin(last), std::end(last), -1);
      std::int64_t got = 0;
      for (;;) {
        get(m);
        if (m.seq == kStop) {
          if (!intact(m, kStop)) bad_msg(m, kStop);
          break;
        }
        const auto p = static_cast<std::int64_t>(m.seq >> kProducerShift);
        const auto i = static_cast<std::int64_t>(m.seq & ((std::uint64_t{1} << kProducerShift) - 1));
        if (p >= kMpmcSide || i >= per || !intact(m, m.seq))
          throw std::runtime_error("a damaged message: seq " + std::to_string(m.seq));
        if (i <= last[p])
          throw std::runtime_error("producer " + std::to_string(p) + "'s message " + std::to_string(i) +
                                   " came after its message " + std::to_string(last[p]));
        last[p] = i;
        ++mine[p * per + i];
        if ((++got & 4095) == 0) me.progress.store(got, std::memory_order_relaxed);
      }
      me.progress.store(got, std::memory_order_relaxed);
    }
  };
  j.verify = [seen, total] {
    const auto* t = static_cast<const std::uint8_t*>(seen->get());
    std::int64_t missing = 0, dup = 0;
    for (std::int64_t k = 0; k < total; ++k) {
      int c = 0;
      for (int s = 0; s < kMpmcSide; ++s) c += t[static_cast<std::size_t>(total) * s + k];
      if (c == 0) ++missing;
      if (c > 1) ++dup;
    }
    if (missing || dup)
      throw std::runtime_error(std::to_string(missing) + " messages lost, " + std::to_string(dup) +
                               " delivered more than once");
  };
  return j;
}

std::vector<Mode> mpmc_modes() {
  std::vector<Mode> modes;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  modes.push_back({"ipckit_queue", "ipckit Queue<Msg64>, 4x4", [] {
                     return ipckit_job<ipckit::Queue<Msg64>>(P.capacity, open_msg64_queue, [&](auto q) {
                       return mpmc_job([q](const Msg64& m) { q->put(m); }, [q](Msg64& m) { m = q->get(); });
                     });
                   }});
#endif
  modes.push_back({"boost_mq", "Boost message_queue, 4x4", [] {
                     auto b = std::make_shared<BoostMq>(P.capacity / sizeof(Msg64), sizeof(Msg64));
                     Job j = mpmc_job([b](const Msg64& m) { b->put(m); }, [b](Msg64& m) { b->get(m); });
                     j.cleanup = [b]() mutable { b.reset(); };
                     return j;
                   }});
  return modes;
}

RateSample run_mpmc(const Mode& m) {
  Job j = m.make();
  RunResult r = run_job(m.name, j);
  std::int64_t end = 0;
  for (int c = kMpmcSide; c < 2 * kMpmcSide; ++c) end = std::max(end, r.finished[c]);
  const std::int64_t total = P.mpmc_messages / kMpmcSide * kMpmcSide;
  RateSample s;
  const double secs = static_cast<double>(end - r.t0) * 1e-9;
  s.per_s = static_cast<double>(total) / secs;
  s.sleeps = 1000.0 * static_cast<double>(r.vol) / static_cast<double>(total);
  if (g_verbose)
    std::fprintf(stderr, "  mpmc %-18s %8.3f M msg/s  %.1f ms  sleeps %ld  preempted %ld%s\n", m.name.c_str(),
                 s.per_s / 1e6, secs * 1e3, r.vol, r.invol, note(r).c_str());
  return s;
}

// ---------------------------------------------------------------------------
// Part 5: idle consumers.

struct IdleSlot {
  alignas(64) std::atomic<int> ready{0};
  std::atomic<std::int64_t> wall_ns{0};
  std::atomic<std::int64_t> cpu_ns{0};
  std::atomic<std::int64_t> returned_at{0};
  std::atomic<long> vol{0};
  std::atomic<int> result{-1};  // 1: got the item, 0: timed out with Empty
};
struct IdleControl {
  alignas(64) std::atomic<std::int64_t> put_at{0};
  IdleSlot slot[2];
};
constexpr int kIdlePutAfterMs = 300;

struct IdleSample {
  double cpu_pct = 0, wall_ms = 0, wake_us = -1, sleeps = 0;
};

const std::vector<std::pair<std::string, std::string>>& idle_rows() {
  static const std::vector<std::pair<std::string, std::string>> rows = {
      {"get", "ipckit Queue::get(), item put after the idle time"},
      {"get_timeout", "ipckit Queue::get(timeout), times out (Empty)"},
  };
  return rows;
}

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
std::map<std::string, IdleSample> run_idle() {
  auto s = std::make_shared<IpckitSeg>(seg_bytes_for(1 << 16, 2));
  auto q_put_later = s->seg->queue<Msg64>("put_later", {.capacity_bytes = 1 << 16});
  auto q_never = s->seg->queue<Msg64>("never", {.capacity_bytes = 1 << 16});
  SharedBlock<IdleControl> ctl;
  const auto idle = std::chrono::milliseconds(P.idle_ms);
  Children kids;
  for (int k = 0; k < 2; ++k) {
    kids.spawn([&, k] {
      IdleSlot& slot = ctl->slot[k];
      try {
        slot.ready.store(1, std::memory_order_release);
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        const std::int64_t c0 = cpu_ns(), w0 = now_ns();
        int r = -1;
        if (k == 0) {
          const Msg64 m = q_put_later.get();
          r = intact(m, 7) ? 1 : 2;
        } else {
          try {
            (void)q_never.get(idle);
            r = 2;
          } catch (const ipckit::Empty&) {
            r = 0;
          }
        }
        const std::int64_t w1 = now_ns(), c1 = cpu_ns();
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        slot.returned_at.store(w1);
        slot.wall_ns.store(w1 - w0);
        slot.cpu_ns.store(c1 - c0);
        slot.vol.store(after.ru_nvcsw - before.ru_nvcsw);
        slot.result.store(r, std::memory_order_release);
      } catch (const std::exception& e) {
        child_fail("idle", k, e.what());
      }
      _exit(0);
    });
  }
  const std::int64_t give_up = now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000;
  for (int k = 0; k < 2; ++k) {
    while (ctl->slot[k].ready.load(std::memory_order_acquire) == 0) {
      if (kids.any_exited()) throw std::runtime_error("idle: a child failed before waiting");
      if (now_ns() > give_up) throw std::runtime_error("idle: the children never started waiting");
      usleep(1000);
    }
  }
  // One sleep past the timed wait's end (the parent adds no wake-ups), then the item.
  sleep_ms(P.idle_ms + kIdlePutAfterMs);
  Msg64 m = blank_msg();
  stamp(m, 7);
  ctl->put_at.store(now_ns());
  q_put_later.put(m);
  bool timed_out = false;
  if (!kids.wait_all(now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000, &timed_out))
    throw std::runtime_error(timed_out ? "idle: a waiter did not return (lost wake-up?)" : "idle: a child failed");
  std::map<std::string, IdleSample> out;
  for (int k = 0; k < 2; ++k) {
    const IdleSlot& slot = ctl->slot[k];
    IdleSample smp;
    smp.wall_ms = static_cast<double>(slot.wall_ns.load()) / 1e6;
    smp.cpu_pct = 100.0 * static_cast<double>(slot.cpu_ns.load()) / static_cast<double>(slot.wall_ns.load());
    smp.sleeps = static_cast<double>(slot.vol.load());
    const int want = k == 0 ? 1 : 0;
    if (slot.result.load() != want)
      throw std::runtime_error("idle: " + idle_rows()[static_cast<std::size_t>(k)].first + " returned " +
                               std::to_string(slot.result.load()) + ", expected " + std::to_string(want));
    if (k == 0) {
      smp.wake_us = static_cast<double>(slot.returned_at.load() - ctl->put_at.load()) / 1e3;
    } else if (smp.wall_ms < 0.99 * P.idle_ms) {
      throw std::runtime_error("idle: get(timeout) returned early, after " + std::to_string(smp.wall_ms) + " ms");
    }
    out[idle_rows()[static_cast<std::size_t>(k)].first] = smp;
  }
  return out;
}
#endif

// ---------------------------------------------------------------------------
// Part 6: single-process costs.

struct CostRow {
  std::string name;
  std::string label;
  std::function<double(std::int64_t iters)> run;  // ns per op
  std::int64_t divisor = 1;                       // runs --cost-iterations / divisor ops
};

// CPU time (not wall time) per op: a run that other programs preempt is not
// charged for the time it did not run.
template <class Op>
double time_ops(std::int64_t iters, Op&& op) {
  for (std::int64_t i = 0; i < std::min<std::int64_t>(iters, 10000); ++i) op(i);  // warm
  const std::int64_t t0 = cpu_ns();
  for (std::int64_t i = 0; i < iters; ++i) {
    op(i);
    asm volatile("" ::: "memory");
  }
  return static_cast<double>(cpu_ns() - t0) / static_cast<double>(iters);
}

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
// put+get of one item through Queue<T> (T: Msg64, Msg64Cereal or Realistic).
template <class T>
CostRow queue_put_get_row(const char* name, const char* label) {
  return {name, label, [](std::int64_t it) {
            IpckitSeg s(seg_bytes_for(P.capacity, 1));
            auto q = s.seg->queue<T>("q", {.capacity_bytes = P.capacity});
            T m;
            init_msg(m);
            return time_ops(it, [&](std::int64_t i) {
              stamp(m, static_cast<std::uint64_t>(i));
              q.put(m);
              m = q.get();
            });
          }};
}
#endif

// One side of a queue alone, for the per-step rows: `put` a batch, then `get`
// it back, `iters` items in all; the CPU time of the chosen side only. A
// batch (1024 items of at most 150 bytes) fits every ring here.
template <class Put, class Get>
double time_side(std::int64_t iters, bool put_side, Put&& put, Get&& get) {
  constexpr std::int64_t kBatch = 1024;
  for (std::int64_t i = 0; i < kBatch; ++i) put(i);  // warm
  for (std::int64_t i = 0; i < kBatch; ++i) get(i);
  std::int64_t spent = 0, done = 0;
  for (; done < iters; done += kBatch) {
    const std::int64_t t0 = cpu_ns();
    for (std::int64_t i = done; i < done + kBatch; ++i) put(i);
    const std::int64_t t1 = cpu_ns();
    for (std::int64_t i = done; i < done + kBatch; ++i) get(i);
    const std::int64_t t2 = cpu_ns();
    spent += put_side ? t1 - t0 : t2 - t1;
  }
  return static_cast<double>(spent) / static_cast<double>(done);
}

// A plain struct of the realistic object's encoded size: Queue copies it as
// its bytes, so its put and get are the ring's cost for 150 bytes alone.
struct Plain150 {
  std::array<char, kRealisticBytes> b;
};

#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
// put alone and get alone of a plain T through Queue<T>: the ring's steps.
template <class T>
void add_ring_side_rows(std::vector<CostRow>& rows, const char* bytes) {
  for (const bool put_side : {true, false}) {
    rows.push_back({std::string("ipckit_ring_") + (put_side ? "put_" : "get_") + bytes,
                    std::string("Queue<") + bytes + " B plain> " + (put_side ? "put" : "get") + " alone (ring step)",
                    [put_side](std::int64_t it) {
                      IpckitSeg s(seg_bytes_for(P.capacity, 1));
                      auto q = s.seg->queue<T>("q", {.capacity_bytes = P.capacity});
                      T item{};
                      std::uint64_t sink = 0;
                      const double ns = time_side(
                          it, put_side,
                          [&](std::int64_t i) {
                            std::memcpy(&item, &i, sizeof i);
                            q.put(item);
                          },
                          [&](std::int64_t) {
                            item = q.get();
                            sink += static_cast<unsigned char>(reinterpret_cast<const char*>(&item)[0]);
                          });
                      asm volatile("" ::"r"(sink));
                      return ns;
                    }});
  }
}
#endif

// The realistic object's steps: ipckit's encode and decode (as put() and
// get() do them), the Boost user's, and both whole paths.
void add_realistic_rows(std::vector<CostRow>& rows) {
  const std::size_t first = rows.size();
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  rows.push_back(queue_put_get_row<Realistic>("ipckit_queue_realistic_put_get", "ipckit Queue<Realistic> put+get"));
  rows.push_back({"ipckit_encode_realistic", "cereal encode of Realistic, as Queue::put", [](std::int64_t it) {
                    Realistic r;
                    init_msg(r);
                    if (ipckit::detail::encode(r).size() != kRealisticBytes)
                      throw std::runtime_error("Realistic encodes to " +
                                               std::to_string(ipckit::detail::encode(r).size()) + " bytes, not " +
                                               std::to_string(kRealisticBytes));
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t i) {
                      stamp(r, static_cast<std::uint64_t>(i));
                      sink += ipckit::detail::encode(r).size();
                    });
                    asm volatile("" ::"r"(sink));
                    return ns;
                  }});
  rows.push_back({"ipckit_decode_realistic", "cereal decode into a new Realistic", [](std::int64_t it) {
                    Realistic r;
                    init_msg(r);
                    stamp(r, 5);
                    const std::string bytes(ipckit::detail::encode(r));
                    std::uint64_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t) {
                      Realistic out;  // as Queue::get(): a fresh T per item
                      ipckit::detail::decode_into(out, bytes.data(), bytes.size());
                      sink += static_cast<std::uint64_t>(out.values[0]);
                      r = std::move(out);
                    });
                    if (!intact(r, 5)) throw std::runtime_error("Realistic does not decode");
                    asm volatile("" ::"r"(sink));
                    return ns;
                  }});
#endif
  rows.push_back({"boost_mq_cereal_send_receive", "Boost mq + user's cereal: Realistic", [](std::int64_t it) {
                    BoostCerealMq b(P.capacity / kRealisticMax);
                    Realistic r;
                    init_msg(r);
                    return time_ops(it, [&](std::int64_t i) {
                      stamp(r, static_cast<std::uint64_t>(i));
                      b.put(r);
                      b.get(r);
                    });
                  }});
  rows.push_back({"boost_user_encode_realistic", "user's cereal encode (bufferstream)", [](std::int64_t it) {
                    BoostCerealMq b(1);
                    Realistic r;
                    init_msg(r);
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t i) {
                      stamp(r, static_cast<std::uint64_t>(i));
                      sink += b.encode(r);
                    });
                    asm volatile("" ::"r"(sink));
                    return ns;
                  }});
  rows.push_back({"boost_user_decode_realistic", "user's cereal decode (bufferstream)", [](std::int64_t it) {
                    BoostCerealMq b(1);
                    Realistic r;
                    init_msg(r);
                    stamp(r, 5);
                    std::array<char, kRealisticMax> bytes{};
                    const std::size_t n = b.encode(r);
                    std::memcpy(bytes.data(), b.encoded(), n);
                    const double ns = time_ops(it, [&](std::int64_t) { b.decode(bytes.data(), n, r); });
                    if (!intact(r, 5)) throw std::runtime_error("Realistic does not decode (Boost user's path)");
                    return ns;
                  }});
  // ~0.5 us an item: a quarter of --cost-iterations keeps each run ~0.3 s.
  for (std::size_t k = first; k < rows.size(); ++k) rows[k].divisor = 4;
}

std::vector<CostRow> cost_rows() {
  std::vector<CostRow> rows;
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  rows.push_back(queue_put_get_row<Msg64>("ipckit_queue_put_get", "ipckit Queue<Msg64> put+get"));
  rows.push_back({"ipckit_byte_queue_put_get", "ipckit ByteQueue 64 B put+get", [](std::int64_t it) {
                    IpckitSeg s(seg_bytes_for(P.capacity, 1));
                    auto q = s.seg->byte_queue("q", {.capacity_bytes = P.capacity});
                    Msg64 m = blank_msg();
                    return time_ops(it, [&](std::int64_t i) {
                      stamp(m, static_cast<std::uint64_t>(i));
                      q.put(std::string_view(reinterpret_cast<const char*>(&m), sizeof m));
                      const std::string b = q.get();
                      std::memcpy(&m, b.data(), sizeof m);
                    });
                  }});
  rows.push_back(queue_put_get_row<Msg64Cereal>("ipckit_queue_cereal_put_get", "ipckit Queue<Msg64Cereal> put+get"));
  rows.push_back({"ipckit_encode", "cereal encode of Msg64Cereal, as Queue::put", [](std::int64_t it) {
                    Msg64Cereal m{blank_msg()};
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t i) {
                      stamp(m, static_cast<std::uint64_t>(i));
                      sink += ipckit::detail::encode(m).size();
                    });
                    if (sink != static_cast<std::size_t>(it + std::min<std::int64_t>(it, 10000)) * 64)
                      throw std::runtime_error("Msg64 does not encode to 64 bytes");
                    return ns;
                  }});
  rows.push_back({"ipckit_decode", "cereal decode of Msg64Cereal, as Queue::get", [](std::int64_t it) {
                    Msg64Cereal m{blank_msg()};
                    stamp(m, 5);
                    const std::string bytes(ipckit::detail::encode(m));
                    Msg64Cereal out{};
                    std::uint64_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t) {
                      ipckit::detail::decode_into(out, bytes.data(), bytes.size());
                      sink += out.seq;
                    });
                    if (!intact(out, 5)) throw std::runtime_error("Msg64 does not decode");
                    asm volatile("" ::"r"(sink));
                    return ns;
                  }});
  // The big row's path, one process: what Queue<std::vector<char>> does per
  // 1 MiB item beside a plain copy.
  rows.push_back({"ipckit_encode_big", "cereal encode of a 1 MiB vector<char>",
                  [](std::int64_t it) {
                    std::vector<char> v(P.big_size, 'y');
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t i) {
                      v[0] = static_cast<char>(i);
                      sink += ipckit::detail::encode(v).size();
                    });
                    asm volatile("" ::"r"(sink));
                    return ns;
                  },
                  1000});
  rows.push_back({"ipckit_decode_big", "cereal decode into a new vector<char>",
                  [](std::int64_t it) {
                    const std::vector<char> v(P.big_size, 'y');
                    const std::string bytes(ipckit::detail::encode(v));
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t) {
                      std::vector<char> out;  // as Queue::get(): a fresh T per item
                      ipckit::detail::decode_into(out, bytes.data(), bytes.size());
                      sink += out.size();
                    });
                    if (sink == 0) throw std::runtime_error("1 MiB vector does not decode");
                    return ns;
                  },
                  1000});
  rows.push_back({"ipckit_queue_vec_put_get", "ipckit Queue<vector<char>> 1 MiB put+get",
                  [](std::int64_t it) {
                    IpckitSeg s(seg_bytes_for(P.big_capacity, 1));
                    ipckit::QueueOptions o;
                    o.capacity_bytes = P.big_capacity;
                    o.max_message = P.big_size + 64;
                    auto q = s.seg->queue<std::vector<char>>("q", o);
                    std::vector<char> v(P.big_size, 'y');
                    std::size_t sink = 0;
                    const double ns = time_ops(it, [&](std::int64_t i) {
                      v[0] = static_cast<char>(i);
                      q.put(v);
                      sink += q.get().size();
                    });
                    asm volatile("" ::"r"(sink));
                    return ns;
                  },
                  1000});
#endif
  rows.push_back({"memcpy_big", "memcpy of 1 MiB (private buffers)",
                  [](std::int64_t it) {
                    std::vector<char> a(P.big_size, 'y'), b(P.big_size, 0);
                    return time_ops(it, [&](std::int64_t i) {
                      a[0] = static_cast<char>(i);
                      std::memcpy(b.data(), a.data(), a.size());
                      asm volatile("" ::"r"(b.data()) : "memory");
                    });
                  },
                  1000});
  rows.push_back({"boost_mq_send_receive", "Boost message_queue send+receive", [](std::int64_t it) {
                    BoostMq b(P.capacity / sizeof(Msg64), sizeof(Msg64));
                    Msg64 m = blank_msg();
                    return time_ops(it, [&](std::int64_t i) {
                      stamp(m, static_cast<std::uint64_t>(i));
                      b.put(m);
                      b.get(m);
                    });
                  }});
  rows.push_back({"raw_ring_put_get", "raw SPSC ring put+get", [](std::int64_t it) {
                    RawRing r(P.capacity);
                    Msg64 m = blank_msg();
                    return time_ops(it, [&](std::int64_t i) {
                      stamp(m, static_cast<std::uint64_t>(i));
                      r.put(m);
                      r.get(m);
                    });
                  }});
  rows.push_back({"memcpy_64", "stamp 2 bytes + memcpy of 64 bytes", [](std::int64_t it) {
                    Msg64 a = blank_msg(), b{};
                    return time_ops(it, [&](std::int64_t i) {
                      stamp(a, static_cast<std::uint64_t>(i));
                      std::memcpy(&b, &a, sizeof a);
                      asm volatile("" ::"r"(&b) : "memory");
                    });
                  }});
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  add_ring_side_rows<Msg64>(rows, "64");
  add_ring_side_rows<Plain150>(rows, "150");
#endif
  add_realistic_rows(rows);
  return rows;
}

// The measured steps of each serialized path beside its whole put+get:
// where a message's time goes when nothing is contended.
void print_breakdown(const std::map<std::string, double>& cost) {
  struct Path {
    const char* what;
    std::array<const char*, 4> steps;  // encode, ring put, ring get, decode
    const char* whole;
  };
  static const Path paths[] = {
      {"Queue<Msg64Cereal>",
       {"ipckit_encode", "ipckit_ring_put_64", "ipckit_ring_get_64", "ipckit_decode"},
       "ipckit_queue_cereal_put_get"},
      {"Queue<Realistic>",
       {"ipckit_encode_realistic", "ipckit_ring_put_150", "ipckit_ring_get_150", "ipckit_decode_realistic"},
       "ipckit_queue_realistic_put_get"},
  };
  bool header = false;
  for (const Path& p : paths) {
    double sum = 0;
    bool all = cost.count(p.whole) > 0;
    for (const char* st : p.steps) {
      all = all && cost.count(st) > 0;
      if (all) sum += cost.at(st);
    }
    if (!all) continue;
    if (!header)
      std::printf("\nWhere a put+get goes (CPU ns, medians above; ring put/get: a plain item of the encoded size)\n");
    header = true;
    std::printf("%-20s encode %6.1f + ring put %6.1f + ring get %6.1f + decode %6.1f = %6.1f; measured put+get %6.1f\n",
                p.what, cost.at(p.steps[0]), cost.at(p.steps[1]), cost.at(p.steps[2]), cost.at(p.steps[3]), sum,
                cost.at(p.whole));
  }
}

// ---------------------------------------------------------------------------
// Reporting.

// Ratios of two rows within each round (the rows of a round ran back to back,
// so mostly with the same vCPU placement), for the rounds both completed.
std::vector<double> paired_ratios(const std::vector<RateSample>& a, const std::vector<RateSample>& b) {
  std::map<int, double> by_round;
  for (const auto& x : b) by_round[x.round] = x.per_s;
  std::vector<double> out;
  for (const auto& x : a)
    if (by_round.count(x.round) && by_round[x.round] > 0) out.push_back(x.per_s / by_round[x.round]);
  return out;
}

// Prints a part's table and adds its RESULT lines: one per row (median rate)
// and, for each row, its paired ratio to the floor row and to Boost's row
// ("<prefix>paired_<row>_vs_<other>": median over rounds of row/other).
void print_rate_table(const char* title, const std::vector<const Mode*>& modes,
                      std::map<std::string, std::vector<RateSample>>& samples, const char* floor_row,
                      const char* boost_row, double scale, const char* unit, const char* prefix,
                      const char* result_unit, std::vector<std::string>& results) {
  if (modes.empty()) return;
  auto add = [&](const std::string& row, double v, const char* u, const Stats& st) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "RESULT %s %.6g %s min=%.6g max=%.6g", row.c_str(), v, u, st.min, st.max);
    results.emplace_back(buf);
  };
  const bool has_floor = floor_row && !samples[floor_row].empty();
  const bool has_boost = boost_row && !samples[boost_row].empty();
  bool probed = false;
  std::printf("\n%s\n", title);
  std::printf("%-20s %-36s %9s %9s %9s %8s %9s %9s %9s\n", "row", "", unit, "(min", "max)", "link ns",
              floor_row ? "vs floor" : "", boost_row ? "vs Boost" : "", "sleeps/k");
  for (const Mode* m : modes) {
    const auto& v = samples[m->name];
    if (v.empty()) {
      std::printf("%-20s %-36s %9s\n", m->name.c_str(), m->label.c_str(), "FAILED");
      continue;
    }
    std::vector<double> rate, sl, link;
    for (const auto& x : v) {
      rate.push_back(x.per_s);
      sl.push_back(x.sleeps);
      if (x.link_ns > 0) link.push_back(x.link_ns);
    }
    probed = probed || !link.empty();
    const Stats r = summarize(rate);
    add(prefix + m->name, r.median, result_unit, r);
    std::string vs_floor = "-", vs_boost = has_boost ? "-" : "";
    if (has_floor && m->name != floor_row) {
      const Stats pr = summarize(paired_ratios(v, samples[floor_row]));
      vs_floor = fmt("%.3fx", pr.median);
      add(std::string(prefix) + "paired_" + m->name + "_vs_" + floor_row, pr.median, "ratio", pr);
    }
    if (has_boost && m->name != boost_row) {
      const Stats pr = summarize(paired_ratios(v, samples[boost_row]));
      vs_boost = fmt("%.2fx", pr.median);
      add(std::string(prefix) + "paired_" + m->name + "_vs_" + boost_row, pr.median, "ratio", pr);
    }
    std::printf("%-20s %-36s %9.3f %9.3f %9.3f %8s %9s %9s %9.2f\n", m->name.c_str(), m->label.c_str(),
                r.median / scale, r.min / scale, r.max / scale,
                link.empty() ? "-" : fmt("%.0f", summarize(link).median).c_str(), vs_floor.c_str(), vs_boost.c_str(),
                summarize(sl).median);
  }
  std::printf(
      "(vs floor / vs Boost: the median over rounds of this row's rate / that row's rate in the same round;\n"
      " sleeps/k: voluntary context switches of all processes per 1000 messages%s)\n",
      probed ? ";\n link ns: median spin round trip between the two pinned CPUs just before each run — on a VM "
               "it moves\n with the host's vCPU placement, and every two-process row with it"
             : "");
}

// Prints the ping-pong table and adds its RESULT lines
// (<prefix><row>_median and <prefix><row>_p99, in us).
template <class Result>
void print_rt_table(const std::vector<const Mode*>& modes, std::map<std::string, std::vector<RtSample>>& samples,
                    const std::string& prefix, Result&& result) {
  std::printf("%-20s %-36s %8s %8s %8s %8s %8s %8s %8s %9s\n", "row", "", "median", "(min", "max)", "p99", "(min",
              "max)", "link ns", "sleeps/rt");
  for (const Mode* m : modes) {
    const auto& v = samples[m->name];
    if (v.empty()) {
      std::printf("%-20s %-36s %8s\n", m->name.c_str(), m->label.c_str(), "FAILED");
      continue;
    }
    std::vector<double> med, p99, sl, link;
    for (const auto& s : v) {
      med.push_back(s.median_us);
      p99.push_back(s.p99_us);
      sl.push_back(s.sleeps_per_rt);
      if (s.link_ns > 0) link.push_back(s.link_ns);
    }
    const Stats a = summarize(med), b = summarize(p99);
    std::printf("%-20s %-36s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8s %9.3f\n", m->name.c_str(), m->label.c_str(),
                a.median, a.min, a.max, b.median, b.min, b.max,
                link.empty() ? "-" : fmt("%.0f", summarize(link).median).c_str(), summarize(sl).median);
    result(prefix + m->name + "_median", a.median, "us", a);
    result(prefix + m->name + "_p99", b.median, "us", b);
  }
  std::printf(
      "(median and p99 of each run's round trips, then the median over runs; one clock read per round "
      "trip is included;\n sleeps/rt: voluntary context switches of both processes per round trip; link ns: "
      "as in the table above)\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "queue_bench — message queues between processes: ipckit Queue/ByteQueue beside Boost.Interprocess "
      "message_queue and raw shared-memory floors (one-way 64 B, ping-pong, 1 MiB, 4x4 MPMC, idle CPU, costs)"};
  int runs = 5, warmup = 1;
  std::vector<std::string> only;
  bool list = false, no_pin = false;
  std::string pinning = "both";
  app.add_option("--runs,-r", runs, "measured runs per row (median, min, max reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "unmeasured rounds first")->check(CLI::NonNegativeNumber);
  app.add_option("--messages,-n", P.messages, "oneway: timed messages per run")->check(CLI::PositiveNumber);
  app.add_option("--warm-messages", P.warm_messages, "oneway: untimed messages first")->check(CLI::NonNegativeNumber);
  app.add_option("--capacity-bytes", P.capacity, "ring bytes of every 64-byte queue (a power of two)")
      ->check(CLI::PositiveNumber);
  app.add_option("--round-trips", P.trips, "pingpong: timed round trips per run (rows that spin)")
      ->check(CLI::PositiveNumber);
  app.add_option("--slow-round-trips", P.slow_trips, "pingpong: timed round trips per run (Boost: always sleeps)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-trips", P.warm_trips, "pingpong: untimed round trips first")->check(CLI::NonNegativeNumber);
  app.add_option("--big-messages", P.big_messages, "big: timed messages per run")->check(CLI::PositiveNumber);
  app.add_option("--big-size", P.big_size, "big: message bytes")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 26));
  app.add_option("--big-capacity", P.big_capacity, "big: ring bytes of the queues")->check(CLI::PositiveNumber);
  app.add_option("--big-slots", P.big_slots, "big: buffers of the raw_copy floor")->check(CLI::Range(1, 64));
  app.add_option("--real-messages", P.real_messages, "realistic: timed messages per run")->check(CLI::PositiveNumber);
  app.add_option("--mpmc-messages", P.mpmc_messages, "mpmc: messages per run, over all 4 producers")
      ->check(CLI::PositiveNumber);
  app.add_option("--idle-runs", P.idle_runs, "idle: runs (each lasts --idle-ms + 0.3 s)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--idle-ms", P.idle_ms, "idle: how long the consumers wait")->check(CLI::PositiveNumber);
  app.add_option("--cost-iterations", P.cost_iterations, "cost: operations per run")->check(CLI::PositiveNumber);
  app.add_option("--mode,-m", only,
                 "run only these parts (oneway, realistic, pingpong, big, mpmc, idle, cost) or part:row");
  app.add_option("--quiet-wait-ms", g_quiet_wait_ms, "before each run, wait up to this long for idle CPUs (0: don't)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-s", g_timeout_s, "watchdog: a run that takes longer fails")->check(CLI::PositiveNumber);
  app.add_option("--rt", g_rt_prio,
                 "run the measured children SCHED_FIFO at this priority (1..99; needs root): on a machine that other "
                 "programs keep busy, they then no longer preempt the rows (idle and cost rows are unaffected)")
      ->check(CLI::Range(0, 99));
  app.add_option("--pinning", pinning,
                 "two-process rows (oneway, realistic, pingpong, big): run them unpinned, pinned to two CPUs, or "
                 "both (unpinned first; pinned rows' results are named q1pin_, qrpin_, rtpin_, bigpin_)")
      ->check(CLI::IsMember({"unpinned", "pinned", "both"}));
  app.add_flag("--no-pin", no_pin, "never pin (as --pinning unpinned)");
  app.add_flag("--list", list, "list the rows and exit");
  app.add_flag("--verbose,-v", g_verbose, "print every run (on stderr)");
  CLI11_PARSE(app, argc, argv);
  if ((P.capacity & (P.capacity - 1)) != 0) {
    std::fprintf(stderr, "queue_bench: --capacity-bytes must be a power of two\n");
    return 2;
  }

  const auto ow = oneway_modes(), rl = realistic_modes(), pp = pingpong_modes(), bg = big_modes(), mp = mpmc_modes();
  const auto cr = cost_rows();
  const std::vector<std::pair<const char*, const std::vector<Mode>*>> parts = {
      {"oneway", &ow}, {"realistic", &rl}, {"pingpong", &pp}, {"big", &bg}, {"mpmc", &mp}};
  if (list) {
    for (const auto& [part, modes] : parts) {
      std::printf("%s\n", part);
      for (const auto& m : *modes) std::printf("  %-22s %s\n", m.name.c_str(), m.label.c_str());
    }
    std::printf("idle\n");
    for (const auto& [n, l] : idle_rows()) std::printf("  %-22s %s\n", n.c_str(), l.c_str());
    std::printf("cost\n");
    for (const auto& c : cost_rows()) std::printf("  %-22s %s\n", c.name.c_str(), c.label.c_str());
    return 0;
  }
  std::set<std::string> wanted(only.begin(), only.end());
  {
    std::set<std::string> known{"oneway", "realistic", "pingpong", "big", "mpmc", "idle", "cost"};
    for (const auto& [part, modes] : parts)
      for (const auto& m : *modes) known.insert(std::string(part) + ":" + m.name);
    for (const auto& c : cr) known.insert("cost:" + c.name);
    for (const auto& w : wanted) {
      if (!known.count(w)) {
        std::fprintf(stderr, "queue_bench: unknown part or row '%s' (see --list)\n", w.c_str());
        return 2;
      }
    }
  }
  auto selected = [&](const std::string& part, const std::string& row) {
    return wanted.empty() || wanted.count(part) || wanted.count(part + ":" + row);
  };
  auto select = [&](const char* part, const std::vector<Mode>& modes) {
    std::vector<const Mode*> out;
    for (const auto& m : modes)
      if (selected(part, m.name)) out.push_back(&m);
    return out;
  };
  const auto ow_sel = select("oneway", ow), rl_sel = select("realistic", rl), pp_sel = select("pingpong", pp),
             bg_sel = select("big", bg), mp_sel = select("mpmc", mp);
  const bool do_idle = wanted.empty() || wanted.count("idle") > 0;
  std::vector<const CostRow*> cr_sel;
  for (const auto& c : cr)
    if (selected("cost", c.name)) cr_sel.push_back(&c);

  if (no_pin) pinning = "unpinned";
  if (pinning != "unpinned") {
    g_cpus = allowed_cpus(2);
    if (g_cpus.size() < 2) g_cpus.clear();
  }
  if (g_rt_prio > 0 && pinning != "pinned") {
    std::fprintf(stderr, "queue_bench: --rt needs --pinning pinned (two SCHED_FIFO spinners may share a CPU)\n");
    return 2;
  }
  if (g_rt_prio > 0 && g_cpus.empty()) {
    // Two SCHED_FIFO spinners sharing one CPU never hand it over.
    std::fprintf(stderr, "queue_bench: --rt needs the two sides pinned to two different CPUs (and no --no-pin)\n");
    return 2;
  }
  std::printf("queue_bench: %d runs (+%d warm-up) per row, interleaved; %ld CPUs online; %s; rings of %zu bytes\n",
              runs, warmup, sysconf(_SC_NPROCESSORS_ONLN),
              g_cpus.empty() ? "two-process rows not pinned"
                             : ("two-process rows not pinned, then pinned to CPUs " + std::to_string(g_cpus[0]) +
                                " and " + std::to_string(g_cpus[1]))
                                   .c_str(),
              P.capacity);
  if (g_rt_prio > 0)
    std::printf(
        "queue_bench: measured children run SCHED_FIFO priority %d (--rt): other programs do not preempt them\n",
        g_rt_prio);
  std::fflush(stdout);

  std::vector<std::string> results;  // RESULT lines, printed last
  auto result = [&](const std::string& row, double v, const char* unit, const Stats& s) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "RESULT %s %.6g %s min=%.6g max=%.6g", row.c_str(), v, unit, s.min, s.max);
    results.emplace_back(buf);
  };
  // Parts 1-3 run unpinned (as users run their processes), then pinned to two
  // CPUs (the hardware's figure, printed beside it); result rows of the
  // pinned pass carry "pin" in their prefix: q1pin_, qrpin_, rtpin_, bigpin_.
  struct PinPass {
    bool pinned;
    const char* tag;
  };
  std::vector<PinPass> passes;
  if (pinning != "pinned") passes.push_back({false, ""});
  if (pinning != "unpinned" && !g_cpus.empty()) passes.push_back({true, "pin"});
  auto for_passes = [&](auto&& part) {
    for (const PinPass& pass : passes) {
      g_pin = pass.pinned;
      const std::string where =
          pass.pinned ? "pinned to CPUs " + std::to_string(g_cpus[0]) + " and " + std::to_string(g_cpus[1])
                      : std::string("not pinned");
      part([&](const char* base) { return std::string(base) + pass.tag + "_"; }, where);
    }
  };

  // Part 1.
  if (!ow_sel.empty()) {
    for_passes([&](auto prefix, const std::string& where) {
      auto samples = interleave<RateSample>("oneway", ow_sel, runs, warmup, run_oneway);
      const std::string title =
          strf("One-way throughput, 64-byte messages, 1 producer -> 1 consumer process, %s", where.c_str()) +
          strf(" (M msg/s; %" PRId64 " messages per run after %" PRId64 " untimed)", P.messages, P.warm_messages);
      print_rate_table(title.c_str(), ow_sel, samples, "raw_ring", "boost_mq", 1e6, "M msg/s", prefix("q1").c_str(),
                       "msg_per_s", results);
      std::fflush(stdout);
    });
  }

  // Part 1b.
  if (!rl_sel.empty()) {
    for_passes([&](auto prefix, const std::string& where) {
      auto samples = interleave<RateSample>("realistic", rl_sel, runs, warmup, run_realistic);
      const std::string title =
          strf("One-way throughput, a realistic object (string, vector<int>, map<string,int>: %zu bytes encoded), %s",
               kRealisticBytes, where.c_str()) +
          strf(" (M msg/s; %" PRId64 " messages per run)", P.real_messages);
      print_rate_table(title.c_str(), rl_sel, samples, nullptr, "boost_mq_cereal", 1e6, "M msg/s", prefix("qr").c_str(),
                       "msg_per_s", results);
      std::fflush(stdout);
    });
  }

  // Part 2.
  if (!pp_sel.empty()) {
    for_passes([&](auto prefix, const std::string& where) {
      auto samples = interleave<RtSample>("pingpong", pp_sel, runs, warmup, run_pingpong);
      std::printf("\nRound trip of a 64-byte message over two queues between 2 processes, %s (us; %" PRId64
                  " timed round trips per run, %" PRId64 " for Boost, after %" PRId64 " untimed)\n",
                  where.c_str(), P.trips, P.slow_trips, P.warm_trips);
      print_rt_table(pp_sel, samples, prefix("rt"), result);
      std::fflush(stdout);
    });
  }

  // Part 3.
  if (!bg_sel.empty()) {
    for_passes([&](auto prefix, const std::string& where) {
      auto samples = interleave<RateSample>("big", bg_sel, runs, warmup, run_big);
      const std::string title = strf("One-way throughput, %zu-byte messages, %s", P.big_size, where.c_str()) +
                                strf(" (GB/s; %" PRId64
                                     " messages per run; queue rings of %zu bytes, raw_copy %d "
                                     "buffers)",
                                     P.big_messages, P.big_capacity, P.big_slots);
      print_rate_table(title.c_str(), bg_sel, samples, "raw_copy", nullptr, 1e9, "GB/s", prefix("big").c_str(),
                       "bytes_per_s", results);
      std::fflush(stdout);
    });
  }

  // Part 4.
  if (!mp_sel.empty()) {
    auto samples = interleave<RateSample>("mpmc", mp_sel, runs, warmup, run_mpmc);
    char title[256];
    std::snprintf(title, sizeof title,
                  "MPMC: 4 producer x 4 consumer processes, one queue, not pinned (M msg/s; %" PRId64
                  " messages per run)",
                  P.mpmc_messages / kMpmcSide * kMpmcSide);
    print_rate_table(title, mp_sel, samples, nullptr, "boost_mq", 1e6, "M msg/s", "mpmc_", "msg_per_s", results);
    std::fflush(stdout);
  }

  // Part 5.
#ifndef QUEUE_BENCH_WITHOUT_IPCKIT
  if (do_idle && P.idle_runs > 0) {
    std::map<std::string, std::vector<IdleSample>> isamples;
    try {
      for (int r = 0; r < P.idle_runs; ++r)
        for (auto& [k, v] : run_idle()) {
          isamples[k].push_back(v);
          if (g_verbose)
            std::fprintf(stderr, "  idle %-12s cpu %.3f%%  wall %.1f ms  sleeps %.0f  wake %.1f us\n", k.c_str(),
                         v.cpu_pct, v.wall_ms, v.sleeps, v.wake_us);
        }
    } catch (const std::exception& e) {
      g_failed["idle"] = e.what();
      std::fprintf(stderr, "queue_bench: idle: FAILED: %s\n", e.what());
      isamples.clear();
    }
    if (!isamples.empty()) {
      std::printf("\nIdle consumer: blocked on an empty ipckit queue for %d ms, measuring its own CPU time (%d runs)\n",
                  P.idle_ms, P.idle_runs);
      std::printf("%-14s %-50s %9s %8s %8s %9s %9s\n", "row", "", "% core", "(min", "max)", "wake-ups", "woken in");
      for (const auto& [name, label] : idle_rows()) {
        std::vector<double> cpu, sl, wk;
        for (const auto& s : isamples[name]) {
          cpu.push_back(s.cpu_pct);
          sl.push_back(s.sleeps);
          if (s.wake_us >= 0) wk.push_back(s.wake_us);
        }
        const Stats c = summarize(cpu);
        std::printf("%-14s %-50s %9.3f %8.3f %8.3f %9.0f %9s\n", name.c_str(), label.c_str(), c.median, c.min, c.max,
                    summarize(sl).median, wk.empty() ? "-" : fmt("%.0f us", summarize(wk).median).c_str());
        char buf[256];
        std::snprintf(buf, sizeof buf, "RESULT idle_queue_%s_cpu %.4f pct_core min=%.4f median=%.4f", name.c_str(),
                      c.max, c.min, c.median);
        results.emplace_back(buf);
      }
      std::printf(
          "(%% core = CPU time / wall time of the call; wake-ups = voluntary context switches during it;\n"
          " woken in = from the parent's put() to get()'s return)\n");
      std::fflush(stdout);
    }
  }
#else
  (void)do_idle;
#endif

  // Part 6.
  std::map<std::string, double> cost_median;
  if (!cr_sel.empty()) {
    std::printf("\nCosts in one process, no peer (CPU ns per operation; %" PRId64
                " per run; a quarter of that for the realistic object, 1/1000 for 1 MiB)\n",
                P.cost_iterations);
    std::printf("%-28s %-40s %8s %8s %8s\n", "row", "", "median", "min", "max");
    for (const CostRow* c : cr_sel) {
      std::vector<double> v;
      try {
        for (int r = -warmup; r < runs; ++r) {
          const double ns = c->run(std::max<std::int64_t>(P.cost_iterations / c->divisor, 1));
          if (r >= 0) v.push_back(ns);
        }
      } catch (const std::exception& e) {
        g_failed["cost:" + c->name] = e.what();
        std::printf("%-28s %-40s FAILED: %s\n", c->name.c_str(), c->label.c_str(), e.what());
        continue;
      }
      const Stats s = summarize(v);
      std::printf("%-28s %-40s %8.2f %8.2f %8.2f\n", c->name.c_str(), c->label.c_str(), s.median, s.min, s.max);
      result("cost_" + c->name, s.median, "ns_per_op", s);
      cost_median[c->name] = s.median;
    }
    print_breakdown(cost_median);
    std::fflush(stdout);
  }

  std::printf("\n");
  if (g_busy_runs > 0)
    std::printf(
        "note: %d run(s) started while other programs kept the CPUs busy (waited up to %d ms for quiet, "
        "20 ms after three busy runs in a row); expect noise\n",
        g_busy_runs, g_quiet_wait_ms);
  if (g_busy_runs > 0 && g_rt_prio == 0)
    std::printf(
        "note: --rt 1 (scripts/bench.sh: BENCH_RT=1) keeps other programs from preempting the measured "
        "processes\n");
  if (g_unspread_runs > 0)
    std::printf("note: %d run(s) were released before both sides were seen on different CPUs\n", g_unspread_runs);
  for (const auto& [row, why] : g_failed) std::printf("FAILED %s: %s\n", row.c_str(), why.c_str());
  for (const auto& line : results) std::printf("%s\n", line.c_str());
  return g_failed.empty() ? 0 : 1;
}
