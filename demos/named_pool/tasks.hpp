// demos/named_pool/tasks.hpp — the tasks of the named_pool demo, compiled into
// both programs: the client submits them, the worker program runs them. They
// travel by the name IPCKIT_TASK gives them, never as code addresses.
#pragma once

#include <unistd.h>

#include <chrono>
#include <ipckit/pool_tasks.hpp>
#include <thread>

namespace named_pool_demo {

// A plain struct: it travels as bytes.
struct Answer {
  int n;
  long square;
  int worker_pid;  // who ran it
};

inline Answer slow_square(int n, int work_us) {
  std::this_thread::sleep_for(std::chrono::microseconds(work_us));
  return {n, static_cast<long>(n) * n, static_cast<int>(::getpid())};
}

}  // namespace named_pool_demo

IPCKIT_TASK(slow_square, named_pool_demo::slow_square);
