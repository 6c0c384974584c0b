// ipckit/queue_options.hpp — the size of a queue, fixed when it is created.
//
// Every process must open a queue with the options it was created with
// (TypeMismatch otherwise). See queue.hpp and priority_queue.hpp for how
// each kind of queue uses them.
#pragma once

#include <cstddef>

namespace ipckit {

struct QueueOptions {
  // FIFO queues: ring bytes, rounded up to a power of two; at most 128 MiB.
  // Priority and LIFO queues: bytes of fixed slots (see slots()).
  std::size_t capacity_bytes = std::size_t{1} << 20;
  std::size_t max_items = 0;    // 0: limited by bytes only
  std::size_t max_message = 0;  // largest encoded item; 0: capacity_bytes / 4 (FIFO), / 64 (priority, LIFO)
};

}  // namespace ipckit
