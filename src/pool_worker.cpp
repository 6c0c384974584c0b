// pool_worker.cpp — what fork pools and named pools share: the segment's
// objects and table, the processes' identities, and the loop a worker runs.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <ctime>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/pool_tasks.hpp"
#include "ipckit/task_error.hpp"
#include "pool_internal.hpp"
#include "process_table_layout.hpp"

namespace ipckit::detail {

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::size_t ring_bytes(std::size_t max_message) {
  const std::size_t want = std::max<std::size_t>(std::size_t{1} << 20, 4 * (max_message + 64));
  return std::min<std::size_t>(std::bit_ceil(want), std::size_t{1} << 27);
}

std::uint64_t owner_word_of_self() noexcept {
  const ThreadIdentity me = this_process();
  return std::uint64_t{me.tid} | ((me.start_ticks & 0xffffffffu) << 32);
}

bool owner_alive(std::uint64_t word) noexcept {
  const pid_t pid = owner_pid(word);
  if (pid <= 0) return false;
  const std::uint64_t ticks = process_start_ticks(pid);
  return ticks != 0 && (ticks & 0xffffffffu) == (word >> 32) && process_alive(static_cast<std::uint32_t>(pid), ticks);
}

std::string describe_current_exception() {
  std::string out = current_exception_type_name();
  out.push_back('\0');
  try {
    throw;
  } catch (const std::exception& e) {
    out += e.what();
  } catch (...) {
    out += "(not a std::exception)";
  }
  return out;
}

// ---------------------------------------------------------------- the segment

QueueOptions PoolSegment::tasks_options(std::size_t max_message) {
  const std::size_t m = max_message + sizeof(TaskHeader) + 256;  // the header and a task's name
  return {.capacity_bytes = ring_bytes(m), .max_message = m};
}
QueueOptions PoolSegment::results_options(std::size_t max_message) {
  const std::size_t m = max_message + sizeof(ResultHeader);
  return {.capacity_bytes = ring_bytes(m), .max_message = m};
}
std::size_t PoolSegment::table_lines(std::uint32_t per_channel, std::uint32_t channels, unsigned workers) {
  return std::size_t{per_channel} * channels + workers + 1 + channels;
}
SegmentOptions PoolSegment::segment_options(std::uint32_t channels, unsigned workers) {
  SegmentOptions o;
  o.max_processes = std::clamp<std::uint32_t>(workers + channels + 1, o.max_processes, detail::kMaxProcessesLimit);
  return o;
}

std::size_t PoolSegment::bytes(std::size_t max_message, std::uint32_t per_channel, std::uint32_t channels,
                               unsigned workers) {
  // The header, directory and process table (what Segment::min_size says
  // for the segment's options, so no change of those can starve the
  // objects), then the objects: the rings and the table, plus a page per
  // queue for its state and alignment.
  const SegmentOptions o = segment_options(channels, workers);
  return Segment::min_size(o.max_objects, o.max_processes) + tasks_options(max_message).capacity_bytes +
         channels * results_options(max_message).capacity_bytes +
         sizeof(Line) * table_lines(per_channel, channels, workers) + (std::size_t{channels} + 1) * 4096;
}

PoolSegment PoolSegment::bind(Segment seg, std::size_t max_message, std::uint32_t per_channel, std::uint32_t channels,
                              unsigned workers) {
  ByteQueue tasks = seg.byte_queue("tasks", tasks_options(max_message));
  std::vector<ByteQueue> results;
  results.reserve(channels);
  // A fork pool's one channel keeps the plain name.
  for (std::uint32_t c = 0; c < channels; ++c)
    results.push_back(seg.byte_queue(channels == 1 ? std::string("results") : "results." + std::to_string(c),
                                     results_options(max_message)));
  RawArray<Line> table = seg.raw_array<Line>("table", table_lines(per_channel, channels, workers));
  // The table's lines are zero when made, which is every record's initial
  // state (Free slots of generation 0, no worker, no client).
  Line* first = table.begin();
  PoolSegment out{std::move(seg), std::move(tasks), std::move(results), max_message, per_channel, channels, workers};
  const std::size_t nslots = std::size_t{per_channel} * channels;
  out.slots = reinterpret_cast<PoolSlot*>(first);
  out.worker_records = reinterpret_cast<PoolWorkerRecord*>(first + nslots);
  out.counters = reinterpret_cast<PoolCounters*>(first + nslots + workers);
  out.channel_records = reinterpret_cast<PoolChannel*>(first + nslots + workers + 1);
  static_assert(sizeof(PoolSlot) == sizeof(Line) && sizeof(PoolWorkerRecord) == sizeof(Line) &&
                sizeof(PoolCounters) == sizeof(Line) && sizeof(PoolChannel) == sizeof(Line));
  return out;
}

// ---------------------------------------------------------------- the worker's loop

// Waits for a task without holding the queue, takes one through a view,
// claims its slot before letting the queue go (a second copy of the record
// finds the slot claimed and is dropped), runs it, sends the result back,
// and marks the slot.
void WorkerLoop::run() {
  std::string name;
  std::string args;
  std::string reply;
  ByteQueue& tasks = shm.tasks;
  for (;;) {
    std::optional<ByteView> view = tasks.try_get_view();
    if (!view) {
      if (tasks.closed() && tasks.qsize() == 0) return;
      if (stop == nullptr) {
        (void)tasks.wait_readable();
        continue;
      }
      if (*stop != 0) return;
      (void)tasks.wait_readable_by(Deadline::after(kSleeperTick));
      continue;
    }
    TaskHeader h{};
    if (view->size() < sizeof h) continue;  // not a task: dropped as the view is released
    std::memcpy(&h, view->data(), sizeof h);
    if (h.slot >= shm.per_channel || h.channel >= shm.channels || h.name_len > view->size() - sizeof h) continue;
    PoolSlot& slot = shm.slots[std::size_t{h.channel} * shm.per_channel + h.slot];
    std::uint32_t queued = slot_word(SlotKind::Queued, 0, h.gen);
    if (!slot.state.compare_exchange_strong(queued, slot_word(SlotKind::Running, index, h.gen),
                                            std::memory_order_acq_rel))
      continue;  // cancelled, or a copy of a task claimed already
    if (runner != 0) slot.runner.store(runner, std::memory_order_relaxed);
    slot.started_ns.store(monotonic_ns(), std::memory_order_relaxed);
    slot.attempts.fetch_add(1, std::memory_order_relaxed);
    name.assign(view->data() + sizeof h, h.name_len);
    args.assign(view->data() + sizeof h + h.name_len, view->size() - sizeof h - h.name_len);
    view.reset();  // frees the record: the next worker may take the next task

    const std::uint32_t kind = run_task(h, name, args, reply);
    ResultHeader r{h.slot, h.gen, kind, 0};
    if (reply.size() > shm.max_message + sizeof(ResultHeader)) {
      const std::size_t size = reply.size() - sizeof r;
      r.kind = kResultTooLarge;
      reply.resize(sizeof r);
      reply += std::to_string(size);
    }
    std::memcpy(reply.data(), &r, sizeof r);
    PoolChannel& channel = shm.channel_records[h.channel];
    send(shm.results[h.channel], channel, reply);
    shm.worker_records[index].tasks.fetch_add(1, std::memory_order_relaxed);
    // The result is queued: a thread waiting on the slot may take it now.
    std::uint32_t running = slot_word(SlotKind::Running, index, h.gen);
    if (slot.state.compare_exchange_strong(running, slot_word(SlotKind::Finishing, 0, h.gen)) &&
        must_wake(slot.waiting))
      wake_sleepers(slot.state, slot.waiting, INT32_MAX);
    PoolCounters& counters = *shm.counters;
    if (must_wake(counters.done_sleepers)) publish_change(counters.done_seq, counters.done_sleepers, INT32_MAX);
    if (channel.collector_eager.load(std::memory_order_relaxed) != 0)
      publish_change(channel.collector_seq, channel.collector_sleepers, 1);
  }
}

std::uint32_t WorkerLoop::run_task(const TaskHeader& h, const std::string& name, const std::string& args,
                                   std::string& reply) {
  try {
    std::string out;
    if (!by_name) {
      // The forked worker runs the pool's own code: the submitter's function addresses are its own.
      reinterpret_cast<InvokeFn>(h.invoke)(h.fn, args.data(), args.size(), out);  // NOLINT(performance-no-int-to-ptr)
    } else {
      // Another program submitted it: only its name is trusted, to pick one of this program's functions.
      PoolTasks::Entry task{};
      if (!pool_tasks().find(name, task))
        throw NotFound(name, "ipckit: pool '" + pool + "': no task named '" + name + "' in worker pid " +
                                 std::to_string(::getpid()) +
                                 "; register it with IPCKIT_TASK in the worker program (pool_tasks.hpp)");
      const InvokeFn run = h.invoke == kNamedChunkTask ? task.chunk : task.invoke;
      if (run == nullptr)
        throw InvalidArgument(name, "ipckit: pool '" + pool + "': map() over '" + name + "', which worker pid " +
                                        std::to_string(::getpid()) + " registered with another signature");
      run(task.fn, args.data(), args.size(), out);
    }
    reply.resize(sizeof(ResultHeader));
    reply += out;
    return kResultOk;
  } catch (...) {
    reply.resize(sizeof(ResultHeader));
    reply += describe_current_exception();
    return kResultThrew;
  }
}

void WorkerLoop::send(ByteQueue& results, PoolChannel& channel, std::string& reply) {
  if (results.try_put(reply)) return;
  // Full: nobody takes results now, so wake the client's collector to.
  publish_change(channel.collector_seq, channel.collector_sleepers, 1);
  if (!by_name) {
    results.put(reply);
    return;
  }
  // A named pool's client may be gone: then nobody takes the result (the
  // next client of the channel drops what is left), and this worker must not
  // wait for it. A rare case, polled, so that the stop flag ends the wait too.
  for (;;) {
    if (results.try_put(reply)) return;
    const std::uint64_t client = channel.owner.load(std::memory_order_acquire);
    if (client == 0 || !owner_alive(client) || (stop != nullptr && *stop != 0)) return;
    const timespec ms{0, 1'000'000};
    ::nanosleep(&ms, nullptr);
  }
}

}  // namespace ipckit::detail
