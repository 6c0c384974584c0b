// cli_peer — the other process of the CLI's shell tests (cli_queue_test.sh):
// it makes a segment of queues and keeps it mapped, or puts and gets items,
// so that `ipckit put/get/gc` run against objects of a live peer.
//
//   cli_peer make SEG         creates SEG with queues "jobs" (strings, at most
//                             3 items), "raw" (bytes), "ints" (ints) and
//                             "tasks" (a joinable queue of strings); prints
//                             "ready" and keeps it mapped until stdin closes
//   cli_peer put SEG QUEUE ITEM...   puts each ITEM into a string queue
//   cli_peer putbytes SEG ITEM...    puts each ITEM into "raw"
//   cli_peer get SEG QUEUE N         gets N items (10 s each), one per line
//   cli_peer lockdie SEG             takes lock "A" of SEG and dies holding it
//   cli_peer world SEG               creates SEG with mode 0666
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "ipckit/ipckit.hpp"

using namespace std::chrono_literals;

namespace {

const ipckit::QueueOptions kJobs{.capacity_bytes = 4096, .max_items = 3};
const ipckit::QueueOptions kSmall{.capacity_bytes = 4096};

int make(const std::string& name) {
  auto seg = ipckit::Segment::create(name, 1 << 20);
  (void)seg.queue<std::string>("jobs", kJobs);
  (void)seg.byte_queue("raw", kSmall);
  (void)seg.queue<int>("ints", kSmall);
  (void)seg.joinable_queue<std::string>("tasks", kSmall);
  std::cout << "ready" << std::endl;
  for (int c; (c = std::getchar()) != EOF;) {
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string cmd = argc > 2 ? argv[1] : "";
  if (cmd == "make") return make(argv[2]);
  if (cmd == "world") {
    (void)ipckit::Segment::create(argv[2], 1 << 16, {.mode = 0666});
    return 0;
  }
  auto seg = ipckit::Segment::open(argv[2]);
  if (cmd == "put" && argc >= 4) {
    auto q = seg.queue<std::string>(argv[3], std::string(argv[3]) == "jobs" ? kJobs : kSmall);
    for (int i = 4; i < argc; ++i) q.put(argv[i], 10s);
    return 0;
  }
  if (cmd == "lockdie") {
    auto a = seg.lock("A");
    a.lock();
    std::_Exit(0);
  }
  if (cmd == "putbytes") {
    auto q = seg.byte_queue("raw", kSmall);
    for (int i = 3; i < argc; ++i) q.put(argv[i], 10s);
    return 0;
  }
  if (cmd == "get" && argc == 5) {
    auto q = seg.queue<std::string>(argv[3], std::string(argv[3]) == "jobs" ? kJobs : kSmall);
    for (int n = std::atoi(argv[4]); n > 0; --n) std::cout << q.get(10s) << std::endl;
    return 0;
  }
  std::cerr << "usage: see cli_peer.cpp\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "cli_peer: " << e.what() << "\n";
  return 1;
}
