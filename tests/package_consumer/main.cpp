// Uses the installed ipckit package: a segment, a lock and a shared counter.
#include <unistd.h>

#include <cereal/types/string.hpp>  // cereal comes with the package's dependencies
#include <cstdint>
#include <cstdio>
#include <exception>
#include <ipckit/ipckit.hpp>
#include <ipckit/queue.hpp>
#include <mutex>
#include <string>

struct Reading {
  std::string sensor;
  double value = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(sensor, value);
  }
};

int main() {
  const std::string name = "ipckit_pkg_test_" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    auto lock = seg.lock("guard");
    auto counter = seg.value<std::int64_t>("counter");
    {
      std::lock_guard g(lock);
      std::lock_guard v(counter.get_lock());
      counter.set(counter.get() + 1);
    }
    const std::int64_t seen = ipckit::Segment::open(name).value<std::int64_t>("counter").get();
    auto readings = seg.queue<Reading>("readings", {.capacity_bytes = 4096});
    readings.put({"t1", 21.5});
    if (readings.get().sensor != "t1") {
      std::fprintf(stderr, "package_consumer: the queue lost its item\n");
      return 1;
    }
    if (!ipckit::Segment::remove(name)) {
      std::fprintf(stderr, "package_consumer: segment %s was already gone\n", name.c_str());
      return 1;
    }
    if (seen != 1) {
      std::fprintf(stderr, "package_consumer: counter is %lld, expected 1\n", static_cast<long long>(seen));
      return 1;
    }
  } catch (const std::exception& e) {
    ipckit::Segment::remove(name);
    std::fprintf(stderr, "package_consumer: %s\n", e.what());
    return 1;
  }
  std::puts("OK");
  return 0;
}
