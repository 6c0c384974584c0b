// fuzz_open_segment — a segment made of arbitrary bytes.
//
// The input is written as a whole segment file (/dev/shm/ipckit.fuzz.<pid>.open),
// opened with Segment::open(), and every object its directory lists is used
// through the typed API with short timeouts (see exercise.hpp). Opening a
// corrupt image must end in an ipckit::Error; using what opened must never
// crash, hang, trip a sanitizer or throw anything but an ipckit::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "exercise.hpp"
#include "ipckit/segment.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ipckit::fuzz;
  static const std::string name = unique_segment_name("open");
  new_input();
  write_segment_file(name, data, size);
  try {
    ipckit::Segment seg = ipckit::Segment::open(name);
    exercise_segment(seg);
  } catch (const ipckit::Error&) {
    // A corrupt image refused (or a later call refused): what we want.
  }
  return 0;
}
