// fuzz_decode — queue records are shared memory, so any process mapping the
// segment can write any bytes into one. This target decodes arbitrary bytes
// as a realistic item (strings, numbers, containers, a nested struct, bools,
// an optional and a unique_ptr) through ipckit's byte archive and checks:
//
//  - nothing but a decode error comes out (no crash, no sanitizer report, no
//    allocation the record's size cannot justify: -rss_limit_mb catches one);
//  - what ipckit accepts, cereal's own BinaryInputArchive accepts too, with an
//    equal value: the same wire format (ipckit is stricter, never looser);
//  - an accepted value re-encodes to bytes that decode to it again.
#include <cereal/archives/binary.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "decode_item.hpp"

namespace {

using fuzz_decode::Item;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "==ipckit-fuzz== FINDING: %s\n", what);
  std::abort();
}

bool ipckit_decodes(Item& out, const char* p, std::size_t n) {
  try {
    ipckit::detail::decode_into(out, p, n);
    return true;
  } catch (const cereal::Exception&) {
    return false;
  } catch (const std::runtime_error&) {  // a record too short for the type
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  Item ours;
  if (!ipckit_decodes(ours, p, size)) return 0;

  Item theirs;
  try {
    std::istringstream in(std::string(p, size));
    cereal::BinaryInputArchive ar(in);
    ar(theirs);
  } catch (const cereal::Exception&) {
    finding("ipckit decoded a record that cereal's BinaryInputArchive rejects");
  }
  if (!(ours == theirs)) finding("ipckit and cereal decode the same record to different values");

  const std::string again(ipckit::detail::encode(ours));
  Item back;
  if (!ipckit_decodes(back, again.data(), again.size())) finding("a decoded value's encoding does not decode");
  if (!(back == ours)) finding("a decoded value's encoding decodes to another value");
  return 0;
}
