// shared_array — the seed's Value + Array example, across processes:
//
//   def worker(counter, array):
//       with counter.get_lock():
//           counter.value += 1
//           array[0] += 1
//
// Each worker also records its number in its own array slot, unlocked, since
// no other worker writes there.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <string>
#include <vector>

namespace {

void worker(ipckit::Value<std::int32_t>& counter, ipckit::Array<std::int32_t>& array, int id, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    std::lock_guard g(counter.get_lock());
    counter.set(counter.get() + 1);
    array[0] += 1;
  }
  array.at(static_cast<std::size_t>(id)) = id;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Workers update a shared Value and Array under the Value's lock (multiprocessing.Value/Array)"};
  int workers = 4, rounds = 10000;
  std::string name = "demo-shared-array-" + std::to_string(::getpid());
  app.add_option("-w,--workers", workers, "worker processes")->check(CLI::Range(1, 64));
  app.add_option("-r,--rounds", rounds, "times each worker runs worker(counter, array)")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--segment", name, "segment name (removed at the end)");
  CLI11_PARSE(app, argc, argv);

  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    ipckit::SegmentRemover remove(name);
    auto counter = seg.value<std::int32_t>("counter");                                     // Value("i", 0)
    auto array = seg.array<std::int32_t>("array", static_cast<std::size_t>(workers) + 1);  // Array("i", n)

    std::vector<ipckit::Process> procs;
    for (int w = 1; w <= workers; ++w) {
      procs.emplace_back([&, w] { worker(counter, array, w, rounds); },
                         ipckit::ProcessOptions{.name = "worker-" + std::to_string(w)});
      procs.back().start();
    }
    bool workers_ok = true;
    for (auto& p : procs) {
      p.join();
      workers_ok = workers_ok && p.exitcode() == 0;
    }

    std::printf("counter.value = %d\narray = [", counter.get());
    for (std::size_t i = 0; i < array.size(); ++i) std::printf("%s%d", i ? ", " : "", array[i]);
    std::printf("]\n");
    const bool ok = workers_ok && counter.get() == workers * rounds && array[0] == workers * rounds;
    std::printf("%s: %d workers x %d rounds\n", ok ? "exact" : "WRONG", workers, rounds);
    return ok ? 0 : 1;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "shared_array: %s\n", e.what());
    return 1;
  }
}
