// frames — zero-copy "video frames" between processes: a producer writes each
// frame in place in a ByteQueue's ring with loan()/publish(), consumers check
// it in place with get_view()/release(). No byte of a frame is copied.
//
//   ipckit::ByteLoan loan = q.loan(frame_bytes);   // room inside the ring
//   paint(loan.data(), ...);                        // the frame is made where it will be read
//   loan.publish();                                 // one store makes it visible
//
//   ipckit::ByteView view = q.get_view();           // the frame, in the ring
//   checksum(view.data(), view.size());             // read where it was written
//   view.release();                                 // its room goes back to the producer
//
// A frame is a header (number, width, height, seed) and width x height RGBA
// pixels: 64-bit words seed + i * kStep, written one by one (writing them is
// the work). A consumer sums the words two ways (plain, and weighted by
// position) and compares with closed forms of the seed, so a torn, stale,
// shuffled or foreign frame fails the demo.
//
// Honest about the contract (loan.hpp): a view holds the queue's consumers'
// side until it is released, so consumers of ONE queue checking frames in
// place take turns; what runs in parallel is the producer painting the next
// frame while a consumer checks the last one. The output shows each
// consumer's count and the time it spent inside views (their sum is close to
// the whole run). Consumers that must work on frames at the same time need a
// queue each.
//
// For comparison, measured in the same run: the same pipeline with put() and
// get() (the frame painted into private memory, copied into the ring, copied
// out into a std::string, then checked), and in this process alone the copy
// floor: memcpy of warm private frame buffers, and put()+get() of a frame
// through a ByteQueue (two copies, nothing else).
//
// The claim it checks (it runs as a test): every frame arrived exactly once
// and intact, in both pipelines, and every process ended cleanly before a
// deadline. Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ipckit/ipckit.hpp>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "demo.hpp"

namespace {

constexpr std::uint64_t kStep = 0x9E3779B97F4A7C15;  // odd: consecutive words all differ
constexpr std::uint32_t kWidth = 1024;               // pixels of 4 bytes: a 1 MiB frame is 1024 x 256

struct FrameHeader {
  std::uint64_t number = 0;
  std::uint32_t width = 0, height = 0;
  std::uint64_t seed = 0;
  std::uint64_t reserved = 0;  // the pixels start 8-aligned (the ring's records are)
};

struct Options {
  int frames = 600, consumers = 2, timeout_s = 60;
  std::uint32_t frame_mib = 4;
  [[nodiscard]] std::uint32_t height() const { return frame_mib * (1u << 20) / (kWidth * 4); }
  [[nodiscard]] std::size_t pixel_words() const { return std::size_t{frame_mib} << 17; }
  [[nodiscard]] std::size_t frame_bytes() const { return sizeof(FrameHeader) + pixel_words() * 8; }
  // Room for four frames (with record headers); the queue rounds it up to a power of two.
  [[nodiscard]] std::size_t ring_bytes() const { return std::bit_ceil(4 * (frame_bytes() + 64)); }
};

std::uint64_t seed_of(std::uint64_t number) {  // splitmix64
  std::uint64_t z = number + kStep;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

// Writes a whole frame (header and every pixel word) at `at`, 8-aligned.
void paint(char* at, const Options& o, std::uint64_t number) {
  const std::uint64_t seed = seed_of(number);
  ::new (static_cast<void*>(at)) FrameHeader{number, kWidth, o.height(), seed, 0};
  auto* px = reinterpret_cast<std::uint64_t*>(at + sizeof(FrameHeader));
  std::uint64_t v = seed;
  for (std::size_t i = 0, n = o.pixel_words(); i < n; ++i, v += kStep) px[i] = v;
}

struct Sums {
  std::uint64_t plain = 0, weighted = 0;  // sum of w[i], sum of i * w[i], both mod 2^64
  bool operator==(const Sums&) const = default;
};

Sums checksum(const std::uint64_t* px, std::size_t n) {
  Sums s;
  for (std::size_t i = 0; i < n; ++i) {
    s.plain += px[i];
    s.weighted += i * px[i];
  }
  return s;
}

// The sums of w[i] = seed + i * kStep, i < n, in closed form (mod 2^64, with
// the divisions done exactly before anything wraps).
Sums expected(std::uint64_t seed, std::uint64_t n) {
  std::uint64_t a = n, b = n - 1, c = 2 * n - 1;
  const std::uint64_t t1 = (a % 2 == 0 ? a / 2 * b : b / 2 * a);  // sum of i
  (a % 2 == 0 ? a : b) /= 2;
  (a % 3 == 0 ? a : b % 3 == 0 ? b : c) /= 3;
  const std::uint64_t t2 = a * b * c;  // sum of i^2
  return {n * seed + kStep * t1, seed * t1 + kStep * t2};
}

// The frame number if the `size` bytes at `at` are one intact frame; -1 otherwise.
std::int64_t check(const char* at, std::size_t size, const Options& o) {
  if (size != o.frame_bytes() || reinterpret_cast<std::uintptr_t>(at) % 8 != 0) return -1;
  FrameHeader h;
  std::memcpy(&h, at, sizeof h);
  if (h.number >= std::uint64_t(o.frames) || h.seed != seed_of(h.number) || h.width != kWidth || h.height != o.height())
    return -1;
  const auto* px = reinterpret_cast<const std::uint64_t*>(at + sizeof(FrameHeader));
  return checksum(px, o.pixel_words()) == expected(h.seed, o.pixel_words()) ? std::int64_t(h.number) : -1;
}

enum class Mode { Loan, Copy };

// What one pipeline's processes report, in shared memory.
struct Tally {
  ipckit::RawArray<std::int32_t> seen;   // per frame: times checked
  ipckit::RawArray<std::int64_t> got;    // per consumer: frames checked
  ipckit::RawArray<std::int64_t> bad;    // per consumer: frames that failed the check
  ipckit::RawArray<std::int64_t> busy;   // per consumer: ns spent checking (inside views, for loans)
  ipckit::RawArray<std::int64_t> paint;  // [0] the producer's ns spent painting (inside loans, for loans)
  ipckit::RawArray<std::int64_t> clock;  // [0] producer's first frame, [1 + c] consumer c's end (ns)
};

Tally tally(ipckit::Segment& seg, const std::string& p, const Options& o) {
  const auto c = std::size_t(o.consumers);
  return {seg.raw_array<std::int32_t>(p + "seen", std::size_t(o.frames)),
          seg.raw_array<std::int64_t>(p + "got", c),
          seg.raw_array<std::int64_t>(p + "bad", c),
          seg.raw_array<std::int64_t>(p + "busy", c),
          seg.raw_array<std::int64_t>(p + "paint", 1),
          seg.raw_array<std::int64_t>(p + "clock", c + 1)};
}

// Runs `f`, adding the nanoseconds it took to `ns`.
template <class F>
void timed(std::int64_t& ns, F&& f) {
  const std::int64_t t0 = demo::now_ns();
  std::forward<F>(f)();
  ns += demo::now_ns() - t0;
}

void produce(ipckit::ByteQueue& q, const Options& o, Mode mode, Tally& t) {
  std::vector<std::uint64_t> own(mode == Mode::Copy ? o.frame_bytes() / 8 : 0);  // Copy: the private frame
  t.clock[0] = demo::now_ns();
  for (int n = 0; n < o.frames; ++n) {
    if (mode == Mode::Loan) {
      ipckit::ByteLoan loan = q.loan(o.frame_bytes());  // blocks while the ring is full
      timed(t.paint[0], [&] { paint(loan.data(), o, std::uint64_t(n)); });
      loan.publish();
    } else {
      timed(t.paint[0], [&] { paint(reinterpret_cast<char*>(own.data()), o, std::uint64_t(n)); });
      q.put(std::string_view(reinterpret_cast<const char*>(own.data()), o.frame_bytes()));
    }
  }
  q.close();  // the consumers drain what is queued, then get Closed
}

// Checks one frame and counts it, as consumer `c`.
void take(const char* at, std::size_t size, const Options& o, Tally& t, int c) {
  const std::int64_t n = check(at, size, o);
  if (n < 0) {
    ++t.bad[c];
    return;
  }
  std::atomic_ref<std::int32_t>(t.seen[std::size_t(n)]).fetch_add(1);
  ++t.got[c];
}

void consume(ipckit::ByteQueue& q, const Options& o, Mode mode, Tally& t, int c) {
  std::string copy;
  for (;;) {
    try {
      if (mode == Mode::Loan) {
        ipckit::ByteView view = q.get_view();  // the consumers' side is ours until release()
        timed(t.busy[c], [&] { take(view.data(), view.size(), o, t, c); });
        view.release();
      } else {
        copy = q.get();
        timed(t.busy[c], [&] { take(copy.data(), copy.size(), o, t, c); });
      }
    } catch (const ipckit::Closed&) {
      break;
    }
  }
  t.clock[1 + c] = demo::now_ns();
}

struct Outcome {
  bool ok = false;
  double secs = 0;
};

// Runs one producer and o.consumers consumers over a fresh queue; prints one line per consumer.
Outcome pipeline(ipckit::Segment& seg, const Options& o, Mode mode) {
  const std::string prefix = mode == Mode::Loan ? "loan-" : "copy-";
  auto q = seg.byte_queue(prefix + "frames", {.capacity_bytes = o.ring_bytes(), .max_message = o.frame_bytes()});
  Tally t = tally(seg, prefix, o);
  std::vector<ipckit::Process> procs;
  for (int c = 0; c < o.consumers; ++c) {
    procs.emplace_back([&, c] { consume(q, o, mode, t, c); },
                       ipckit::ProcessOptions{.name = prefix + "consumer-" + std::to_string(c + 1), .daemon = true});
    procs.back().start();
  }
  procs.emplace_back([&] { produce(q, o, mode, t); },
                     ipckit::ProcessOptions{.name = prefix + "producer", .daemon = true});
  procs.back().start();

  const auto deadline = demo::Clock::now() + std::chrono::seconds(o.timeout_s);
  bool ok = procs.back().join_until(deadline);
  q.close();  // should the producer have failed, the consumers still end
  for (auto& p : procs) ok = p.join_until(deadline) && ok;
  if (!ok) {
    demo::say("FAILED: %s pipeline still running after %d s; killing it\n", prefix.c_str(), o.timeout_s);
    for (auto& p : procs) p.kill();
    for (auto& p : procs) p.join();
    return {};
  }
  for (auto& p : procs) {
    if (p.exitcode() == 0) continue;
    demo::say("FAILED: %s ended with %d\n", p.name().c_str(), p.exitcode().value_or(-1));
    ok = false;
  }

  demo::say("  producer painted %d frames (%.3f s painting%s)\n", o.frames, double(t.paint[0]) * 1e-9,
            mode == Mode::Loan ? " inside loans" : "");
  std::int64_t checked = 0, wrong = 0;
  for (int c = 0; c < o.consumers; ++c) {
    checked += t.got[c];
    wrong += t.bad[c];
    demo::say("  consumer-%d checked %lld frames (%.3f s checking%s)\n", c + 1, static_cast<long long>(t.got[c]),
              double(t.busy[c]) * 1e-9, mode == Mode::Loan ? " inside views" : " its copies");
  }
  int missing = 0, doubled = 0;
  for (int n = 0; n < o.frames; ++n) {
    missing += t.seen[n] == 0;
    doubled += t.seen[n] > 1;
  }
  if (wrong || missing || doubled || checked != o.frames) {
    demo::say("FAILED: %lld frames failed the checksum, %d never arrived, %d arrived twice\n",
              static_cast<long long>(wrong), missing, doubled);
    ok = false;
  }
  const std::int64_t end = *std::max_element(&t.clock[1], &t.clock[0] + t.clock.size());
  return {ok, double(end - t.clock[0]) * 1e-9};
}

void report(const char* what, double bytes, double secs) {
  demo::say("%-44s %7.3f s  %6.2f GB/s\n", what, secs, bytes / secs * 1e-9);
}

// memcpy of warm private frame buffers, `rounds` times: GB/s of frame bytes.
double memcpy_floor(const Options& o, int rounds) {
  std::vector<std::uint64_t> src(o.frame_bytes() / 8), dst(src.size());
  paint(reinterpret_cast<char*>(src.data()), o, 0);
  std::memcpy(dst.data(), src.data(), o.frame_bytes());  // warm: both touched once before timing
  const std::int64_t t0 = demo::now_ns();
  for (int r = 0; r < rounds; ++r) {
    src[r % src.size()] ^= 1;  // so no round is the same copy
    std::memcpy(dst.data(), src.data(), o.frame_bytes());
  }
  return double(demo::now_ns() - t0) * 1e-9;
}

// put() then get() of a painted frame through a ByteQueue in this process, `rounds` times.
double put_get_floor(ipckit::Segment& seg, const Options& o, int rounds) {
  auto q = seg.byte_queue("floor", {.capacity_bytes = o.ring_bytes(), .max_message = o.frame_bytes()});
  std::vector<std::uint64_t> src(o.frame_bytes() / 8);
  paint(reinterpret_cast<char*>(src.data()), o, 0);
  const std::string_view frame(reinterpret_cast<const char*>(src.data()), o.frame_bytes());
  std::string out;
  for (int warm = 0; warm < 4; ++warm) q.put(frame), out = q.get();  // ring pages and the string's buffer touched
  const std::int64_t t0 = demo::now_ns();
  for (int r = 0; r < rounds; ++r) {
    q.put(frame);
    out = q.get();
  }
  return double(demo::now_ns() - t0) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Zero-copy video frames: a producer process writes them in place in a ByteQueue, consumers check them"};
  Options o;
  app.add_option("-n,--frames", o.frames, "frames to send")->check(CLI::Range(1, 1'000'000));
  app.add_option("--frame-mib", o.frame_mib, "pixel MiB per frame (1024 x 256 RGBA per MiB)")->check(CLI::Range(1, 16));
  app.add_option("-c,--consumers", o.consumers, "consumer processes")->check(CLI::Range(1, 16));
  app.add_option("--timeout-s", o.timeout_s, "give up (and fail) if a pipeline has not ended by then")
      ->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);

  const std::string name = "demo-frames-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, 3 * o.ring_bytes() + (std::size_t{2} << 20) + std::size_t(o.frames) * 8);
    ipckit::SegmentRemover remove(name);
    const double bytes = double(o.frames) * double(o.frame_bytes());
    demo::say("%d frames of %u x %u RGBA (%zu bytes with the header), ring %zu MiB, 1 producer, %d consumer(s)\n",
              o.frames, kWidth, o.height(), o.frame_bytes(), o.ring_bytes() >> 20, o.consumers);

    demo::say("loan() in place -> get_view() in place (consumers take turns):\n");
    const Outcome loan = pipeline(seg, o, Mode::Loan);
    demo::say("put() a private frame -> get() a copy (consumers overlap):\n");
    const Outcome copy = pipeline(seg, o, Mode::Copy);
    if (!loan.ok || !copy.ok) return 1;

    const int rounds = std::clamp(o.frames, 16, 200);
    const double floor_bytes = double(rounds) * double(o.frame_bytes());
    demo::say("\n%d frames, %.0f MiB each way:\n", o.frames, bytes / double(1 << 20));
    report("zero-copy pipeline (paint, publish, check)", bytes, loan.secs);
    report("copy pipeline (paint, put, get, check)", bytes, copy.secs);
    demo::say("copy floor, this process alone, %d frames:\n", rounds);
    report("  memcpy of a warm private frame (in cache)", floor_bytes, memcpy_floor(o, rounds));
    report("  ByteQueue put()+get() (two copies)", floor_bytes, put_get_floor(seg, o, rounds));
    demo::say("zero-copy / copy pipeline: %.2fx; every frame checked exactly once, intact, in both\n",
              copy.secs / loan.secs);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "frames: %s\n", e.what());
    return 1;
  }
}
