// job.hpp — what the work_queue producer and its consumer programs agree on.
//
// Two separate binaries meet in one segment by name; they must open each
// object with the same type and options, so both take them from here.
#pragma once

#include <cereal/types/vector.hpp>
#include <cstdint>
#include <ipckit/ipckit.hpp>
#include <vector>

namespace work_queue {

// One unit of work: add up `numbers`.
struct Job {
  std::int32_t id = 0;
  std::vector<std::int64_t> numbers;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, numbers);
  }
};

// Written once by the producer before any consumer starts; a consumer needs
// only the segment name and its own index, and reads the rest from here.
struct Config {
  std::int32_t jobs = 0;       // length of the per-job arrays
  std::int32_t consumers = 0;  // length of the per-consumer array
  std::int32_t work_us = 0;    // extra time a consumer spends on each job
  std::int32_t show = 0;       // jobs each consumer prints
};

inline constexpr const char* kConfig = "config";             // Value<Config>
inline constexpr const char* kJobs = "jobs";                 // JoinableQueue<Job>
inline constexpr const char* kResults = "results";           // Array<int64_t>[jobs]: the sum a consumer computed
inline constexpr const char* kTimesDone = "times-done";      // Array<int32_t>[jobs]: how often a job was done
inline constexpr const char* kDoneBy = "done-by";            // Array<int32_t>[jobs]: 1-based consumer index
inline constexpr const char* kPerConsumer = "per-consumer";  // Array<int64_t>[consumers]: jobs each did

inline ipckit::QueueOptions job_queue_options() { return {.capacity_bytes = std::size_t{64} << 10}; }

}  // namespace work_queue
