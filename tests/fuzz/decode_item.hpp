// decode_item.hpp — the item fuzz_decode decodes, and seeds for its corpus
// (written by make_corpus.cpp).
#pragma once

#include <array>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/detail/codec.hpp"

namespace fuzz_decode {

// Every path of the byte archive: numbers, strings, containers of numbers
// and of classes, a map, a bool and bools in an array, an optional, and a
// unique_ptr (cereal's bookkeeping path).
struct Part {
  std::int16_t id = 0;
  std::string tag;
  bool operator==(const Part&) const = default;
  template <class A>
  void serialize(A& a) {
    a(id, tag);
  }
};

struct Item {
  std::string name;
  std::vector<int> values;
  std::map<std::string, int> counts;
  std::vector<Part> parts;
  bool flag = false;
  std::array<bool, 3> bits{};
  std::optional<double> weight;
  std::unique_ptr<std::uint32_t> extra;

  bool operator==(const Item& o) const {
    const bool same_extra = (extra == nullptr) == (o.extra == nullptr) && (extra == nullptr || *extra == *o.extra);
    return name == o.name && values == o.values && counts == o.counts && parts == o.parts && flag == o.flag &&
           bits == o.bits && weight.has_value() == o.weight.has_value() &&
           (!weight || std::memcmp(&*weight, &*o.weight, sizeof(double)) == 0) && same_extra;
  }
  template <class A>
  void serialize(A& a) {
    a(name, values, counts, parts, flag, bits, weight, extra);
  }
};

// Encodings of an empty and of a full item.
inline std::vector<std::string> seeds() {
  std::vector<std::string> out;
  Item empty;
  out.emplace_back(ipckit::detail::encode(empty));
  Item full;
  full.name = "camera-7";
  full.values = {1, -2, 3, 1 << 30};
  full.counts = {{"frames", 120}, {"drops", 2}, {"", -1}};
  full.parts = {{1, "lens"}, {-4, ""}, {300, "a longer tag that needs more bytes"}};
  full.flag = true;
  full.bits = {true, false, true};
  full.weight = 0.25;
  full.extra = std::make_unique<std::uint32_t>(0xdeadbeef);
  out.emplace_back(ipckit::detail::encode(full));
  return out;
}

}  // namespace fuzz_decode
