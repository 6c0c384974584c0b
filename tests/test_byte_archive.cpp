// ipckit's cereal archives (include/ipckit/detail/byte_archive.hpp): the
// same bytes as cereal's binary archives, both ways, for every kind of type
// cereal serializes; and bytes that are no such encoding (truncated, padded,
// corrupt) throw instead of reading outside them.
#include <gtest/gtest.h>

#include <array>
#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/polymorphic.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <chrono>
#include <complex>
#include <cstdint>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ipckit/detail/byte_archive.hpp"
#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "multiprocess.hpp"

namespace {

using ipckit::detail::archive::ByteInputArchive;
using ipckit::detail::archive::ByteOutputArchive;
using ipckit::detail::archive::ByteSink;

// Unscoped, with a fixed underlying type: any int read from corrupt bytes is
// a valid Colour. (Without one, a value outside the enumerators' bit range is
// undefined behaviour in C++ itself, whoever decodes it.)
enum Colour : int { Red, Green = 7, Blue = 200 };
enum class Wide : std::int64_t { Low = -5, High = std::numeric_limits<std::int64_t>::max() };
enum class Narrow : std::uint8_t { A = 1, B = 255 };

struct Point {
  std::int32_t x = 0;
  double y = 0;
  bool operator==(const Point&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(CEREAL_NVP(x), CEREAL_NVP(y));  // names: written by neither binary format
  }
};

struct Shape {
  std::string name;
  std::vector<Point> points;
  std::map<std::string, int> tags;
  std::optional<Colour> colour;
  std::array<std::int16_t, 3> dims{};
  float grid[2] = {0, 0};  // a C array of numbers: one block of bytes
  bool operator==(const Shape& o) const {
    return name == o.name && points == o.points && tags == o.tags && colour == o.colour && dims == o.dims &&
           grid[0] == o.grid[0] && grid[1] == o.grid[1];
  }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, points, tags, colour, dims, grid);
  }
};

// save() and load() apart, and a version written once per archive.
struct Account {
  std::string owner;
  std::int64_t cents = 0;
  bool operator==(const Account&) const = default;
  template <class Archive>
  void save(Archive& ar, std::uint32_t version) const {
    ar(owner, cents, version);
  }
  template <class Archive>
  void load(Archive& ar, std::uint32_t version) {
    std::uint32_t written = 0;
    ar(owner, cents, written);
    if (written != version) throw std::runtime_error("version mismatch");
  }
};

// save_minimal/load_minimal: needs the archives paired up (CEREAL_SETUP_ARCHIVE_TRAITS).
struct Celsius {
  double degrees = 0;
  bool operator==(const Celsius&) const = default;
  template <class Archive>
  double save_minimal(const Archive&) const {
    return degrees;
  }
  template <class Archive>
  void load_minimal(const Archive&, const double& d) {
    degrees = d;
  }
};

struct Animal {
  virtual ~Animal() = default;
  [[nodiscard]] virtual std::string sound() const = 0;
};
struct Dog : Animal {
  std::string name;
  [[nodiscard]] std::string sound() const override { return name + ": woof"; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name);
  }
};

// A versioned base reached through base_class: cereal writes its version
// without a prologue for it.
struct Base {
  std::int32_t b = 0;
  bool operator==(const Base&) const = default;
  template <class Archive>
  void serialize(Archive& ar, std::uint32_t) {
    ar(b);
  }
};
struct Derived : Base {
  std::int32_t d = 0;
  bool operator==(const Derived&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::base_class<Base>(this), d);
  }
};

}  // namespace

CEREAL_CLASS_VERSION(Account, 3)
CEREAL_CLASS_VERSION(Base, 5)
CEREAL_REGISTER_TYPE(Dog)
CEREAL_REGISTER_POLYMORPHIC_RELATION(Animal, Dog)

namespace {

template <class T>
std::string with_cereal(const T& value) {
  std::ostringstream os;
  {
    cereal::BinaryOutputArchive ar(os);
    ar(value);
  }
  return os.str();
}

template <class T>
std::string with_ipckit(const T& value) {
  ByteSink sink;
  {
    ByteOutputArchive ar(sink);
    ar(value);
  }
  return std::string(sink.view());
}

template <class T>
T from_cereal(const std::string& bytes) {
  std::istringstream is(bytes);
  cereal::BinaryInputArchive ar(is);
  T value{};
  ar(value);
  return value;
}

template <class T>
T from_ipckit(const std::string& bytes) {
  ByteInputArchive ar(bytes.data(), bytes.size());
  T value{};
  ar(value);
  ar.finish();
  return value;
}

// Writes `value` with both archives: the same bytes, and each reads the
// other's back to `value` (as `same` sees it).
template <class T, class Same>
void expect_same_wire(const T& value, Same same) {
  const std::string theirs = with_cereal(value);
  const std::string ours = with_ipckit(value);
  EXPECT_EQ(ours, theirs) << typeid(T).name();
  EXPECT_TRUE(same(from_ipckit<T>(theirs), value)) << typeid(T).name();
  EXPECT_TRUE(same(from_cereal<T>(ours), value)) << typeid(T).name();
}
template <class T>
void expect_same_wire(const T& value) {
  expect_same_wire(value, [](const T& a, const T& b) { return a == b; });
}

template <class... T>
void expect_same_wire_all(const T&... values) {
  (expect_same_wire(values), ...);
}

Shape sample_shape() {
  Shape s;
  s.name = "triangle";
  s.points = {{1, 0.5}, {-2, 1e300}, {std::numeric_limits<std::int32_t>::min(), -0.0}};
  s.tags = {{"edges", 3}, {"", -1}, {std::string(300, 'z'), 42}};
  s.colour = Blue;
  s.dims = {-1, 0, 32767};
  s.grid[0] = 1.25F;
  s.grid[1] = -3.5F;
  return s;
}

TEST(ByteArchive, NumbersOfEveryWidthAndEnumsAreWrittenAsCerealsBinaryArchiveWritesThem) {
  expect_same_wire_all(std::int8_t{-128}, std::uint8_t{255}, std::int16_t{-12345}, std::uint16_t{65535},
                       std::int32_t{-7}, std::uint32_t{0xdeadbeef},
                       std::int64_t{std::numeric_limits<std::int64_t>::min()}, std::uint64_t{~0ULL}, 'x',
                       static_cast<signed char>(-1), wchar_t{L'\u00e9'}, char16_t{0x263a}, char32_t{0x1f600}, true,
                       false, 3.25F, -1e-300, std::numeric_limits<double>::infinity());
  expect_same_wire_all(Green, Blue, Wide::Low, Wide::High, Narrow::B);
  EXPECT_EQ(with_ipckit(std::int16_t{0x0102}), std::string("\x02\x01", 2)) << "the machine's byte order, no framing";
}

TEST(ByteArchive, StringsAndContainersAreWrittenAsCerealsBinaryArchiveWritesThem) {
  expect_same_wire_all(std::string(), std::string("hello"), std::string(1000, '\0'), std::wstring(L"w\u00e9de"),
                       std::u16string(u"\u263a"));
  expect_same_wire_all(std::vector<int>{}, std::vector<int>{1, -2, 3}, std::vector<double>(100, 0.1),
                       std::vector<bool>{true, false, true}, std::vector<std::string>{"a", "", "ccc"},
                       std::vector<std::vector<std::uint8_t>>{{}, {1, 2}, {3}});
  expect_same_wire_all(std::map<std::string, int>{{"one", 1}, {"two", 2}}, std::set<std::int64_t>{5, -5, 0},
                       std::deque<float>{1.5F, 2.5F}, std::list<std::string>{"x", "yy"},
                       std::unordered_map<int, std::string>{{1, "a"}, {2, "b"}, {3, "c"}});
  expect_same_wire_all(std::array<char, 56>{'a', 'b'}, std::array<std::string, 2>{"p", "q"},
                       std::pair<int, std::string>{4, "four"}, std::tuple<bool, double, std::string>{true, 2.5, "t"},
                       std::tuple<>{});
}

TEST(ByteArchive, OptionalVariantChronoComplexAndBitsetAreWrittenAsCerealWritesThem) {
  expect_same_wire_all(std::optional<int>{}, std::optional<int>{9}, std::optional<std::string>{"s"});
  expect_same_wire_all(std::variant<int, std::string, Point>{7}, std::variant<int, std::string, Point>{"v"},
                       std::variant<int, std::string, Point>{Point{1, 2}});
  expect_same_wire_all(std::chrono::milliseconds{1234}, std::complex<double>{1, -1}, std::bitset<70>{0x5a5aULL});
}

TEST(ByteArchive, StructsNestedSplitVersionedAndMinimalAreWrittenAsCerealWritesThem) {
  expect_same_wire_all(Point{3, 4.5}, sample_shape(), Shape{}, Celsius{21.5});
  expect_same_wire(std::vector<Shape>{sample_shape(), Shape{}, sample_shape()});
  // The version (a uint32 after the first Account only) is part of the bytes.
  const std::vector<Account> accounts{{"ann", 100}, {"bob", -5}};
  expect_same_wire(accounts);
  EXPECT_EQ(with_ipckit(Account{"", 0}).size(), 4U + 8U + 8U + 4U) << "version, empty name, cents, version field";
}

TEST(ByteArchive, SmartPointersAndPolymorphicPointersAreWrittenAsCerealWritesThem) {
  const auto deref_equal = [](const auto& a, const auto& b) {
    return (a == nullptr) == (b == nullptr) && (!a || *a == *b);
  };
  expect_same_wire(std::make_unique<Point>(Point{1, 1}), deref_equal);
  expect_same_wire(std::unique_ptr<Point>(), deref_equal);
  // The same shared object twice is written once, then by its id.
  const auto shared = std::make_shared<std::string>("shared");
  using Twice = std::pair<std::shared_ptr<std::string>, std::shared_ptr<std::string>>;
  const Twice twice{shared, shared};
  expect_same_wire(twice, [](const Twice& a, const Twice& b) {
    return a.first == a.second && *a.first == *b.first && b.first == b.second;
  });
  auto dog = std::make_shared<Dog>();
  dog->name = "rex";
  const std::shared_ptr<Animal> animal = dog;
  expect_same_wire(animal, [](const std::shared_ptr<Animal>& a, const std::shared_ptr<Animal>& b) {
    return a->sound() == b->sound();
  });
}

// An item whose save() encodes another item on the same thread.
struct Outer {
  std::int32_t a = 1, b = 2;
  template <class Archive>
  void save(Archive& ar) const {
    ar(a);
    (void)ipckit::detail::encode(sample_shape());
    ar(b);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(a, b);
  }
};

// save()/load() written for cereal's binary archives only (not templates):
// such an item still travels, through cereal's own archives.
struct Legacy {
  std::int32_t v = 0;
  void save(cereal::BinaryOutputArchive& ar) const { ar(v); }
  void load(cereal::BinaryInputArchive& ar) { ar(v); }
};
static_assert(!ipckit::detail::kByteArchiveItem<Legacy> && ipckit::detail::kBinaryArchiveItem<Legacy>);

TEST(ByteArchive, AnItemSerializableOnlyByCerealsBinaryArchivesStillTravels) {
  const std::string bytes(ipckit::detail::encode(Legacy{77}));
  EXPECT_EQ(bytes, with_cereal(std::int32_t{77}));
  Legacy back;
  ipckit::detail::decode_into(back, bytes.data(), bytes.size());
  EXPECT_EQ(back.v, 77);
}

// The codec's Cereal path is this archive: what put() writes for a struct is
// what cereal's binary archive writes for it, and reads it back.
TEST(ByteArchive, TheQueueCodecEncodesStructsWithItAndDecodesCerealsBytes) {
  const Shape s = sample_shape();
  EXPECT_EQ(std::string(ipckit::detail::encode(s)), with_cereal(s));
  const std::string theirs = with_cereal(s);
  Shape back;
  ipckit::detail::decode_into(back, theirs.data(), theirs.size());
  EXPECT_EQ(back, s);
  // An encoding stays valid across the next decode, and a nested encode
  // (an item whose save() encodes another) leaves the outer one whole.
  EXPECT_EQ(std::string(ipckit::detail::encode(Outer{})), with_cereal(std::make_pair(1, 2)));
}

// The codec keeps an archive per thread from item to item: no item may see
// what the one before left in it (a class version is written once per
// archive, shared pointers and polymorphic types by ids).
template <class T, class Same>
void expect_codec_as_fresh(const T& value, Same same) {
  const std::string theirs = with_cereal(value);
  EXPECT_EQ(std::string(ipckit::detail::encode(value)), theirs) << typeid(T).name();
  T back{};
  ipckit::detail::decode_into(back, theirs.data(), theirs.size());
  EXPECT_TRUE(same(back, value)) << typeid(T).name();
}
template <class T>
void expect_codec_as_fresh(const T& value) {
  expect_codec_as_fresh(value, [](const T& a, const T& b) { return a == b; });
}

TEST(ByteArchive, EveryItemIsCodedAsByAFreshArchiveThoughTheArchiveIsKept) {
  auto dog = std::make_shared<Dog>();
  dog->name = "rex";
  const std::shared_ptr<Animal> animal = dog;
  const auto shared = std::make_shared<std::string>("s");
  using Twice = std::pair<std::shared_ptr<std::string>, std::shared_ptr<std::string>>;
  for (int round = 0; round < 3; ++round) {
    expect_codec_as_fresh(Account{"ann", round});
    expect_codec_as_fresh(Point{round, 1});
    expect_codec_as_fresh(Derived{{round}, 2});
    expect_codec_as_fresh(Twice{shared, shared},
                          [](const Twice& a, const Twice& b) { return *a.first == *b.first && a.first == a.second; });
    expect_codec_as_fresh(animal, [](const auto& a, const auto& b) { return a->sound() == b->sound(); });
    expect_codec_as_fresh(std::make_tuple(sample_shape(), Account{"bob", 1}, Derived{}));
  }
  // An item that fails half-way leaves nothing behind for the next.
  const std::string account = with_cereal(Account{"carl", 9});
  Account back;
  EXPECT_ANY_THROW(ipckit::detail::decode_into(back, account.data(), 6));
  ipckit::detail::decode_into(back, account.data(), account.size());
  EXPECT_EQ(back, (Account{"carl", 9}));
}

template <class T>
std::string decode_failure(const std::string& bytes) {
  try {
    T out{};
    ipckit::detail::decode_into(out, bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ByteArchive, EveryTruncationAndAnyBytesLeftOverThrowInsteadOfReadingOutside) {
  const std::string whole = with_cereal(sample_shape());
  for (std::size_t n = 0; n < whole.size(); ++n) {
    // A copy of exactly n bytes: reading past it would be a heap overflow (ASan).
    EXPECT_NE(decode_failure<Shape>(whole.substr(0, n)), "") << "a prefix of " << n << " bytes decoded";
  }
  EXPECT_NE(decode_failure<Shape>(whole + '\0').find("left over"), std::string::npos);
  EXPECT_NE(decode_failure<Point>(std::string(11, 'p')).find("needed"), std::string::npos);
}

// A container that resizes to its count before reading its elements: a
// corrupt count is refused before the allocation (the top-level string and
// vector of numbers travel without an archive, hence the tuples).
template <class T>
std::string failure_with_count(std::uint64_t count) {
  std::string bytes = with_cereal(std::tuple<T>{});
  std::memcpy(bytes.data(), &count, sizeof count);
  return decode_failure<std::tuple<T>>(bytes);
}

TEST(ByteArchive, ACountLargerThanTheRecordThrowsBeforeAllocating) {
  const std::uint64_t huge = std::uint64_t{1} << 40;
  EXPECT_NE(failure_with_count<std::vector<int>>(huge).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::vector<int>>(1).find("count"), std::string::npos) << "4 bytes, none there";
  EXPECT_NE(failure_with_count<std::string>(1).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::vector<bool>>(1).find("count"), std::string::npos);
  // Other elements: at most 64 times the bytes left in memory, plus 64 KiB.
  EXPECT_NE(failure_with_count<std::vector<std::string>>(1 << 20).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::deque<Point>>(huge).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::list<int>>(huge).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::vector<Shape>>(100000).find("count"), std::string::npos);
  EXPECT_NE(failure_with_count<std::vector<std::string>>(10).find("needed"), std::string::npos)
      << "a small count is allowed, then the elements are missing";
  // Elements that encode to nothing still decode, up to that slack.
  expect_same_wire(std::vector<std::tuple<>>(1000));
  using Map = std::map<std::string, int>;
  EXPECT_NE(decode_failure<Map>(std::string(8, '\xff')), "");
}

TEST(ByteArchive, AByteOtherThanZeroOrOneIsNoBool) {
  EXPECT_NE(decode_failure<std::tuple<bool>>(std::string(1, '\x02')).find("bool"), std::string::npos);
  std::string bools = with_cereal(std::array<bool, 3>{true, false, true});
  bools[1] = 'x';
  using Bools = std::array<bool, 3>;
  EXPECT_NE(decode_failure<Bools>(bools).find("bool"), std::string::npos);
  std::string flags = with_cereal(std::vector<bool>{true, true});
  flags.back() = '\x80';
  EXPECT_NE(decode_failure<std::vector<bool>>(flags).find("bool"), std::string::npos);
}

// Bytes changed at random: decoding either gives some Shape or throws; never
// reads outside the record (the test binary may run under ASan).
TEST(ByteArchive, CorruptBytesDecodeToSomethingOrThrowNeverReadOutside) {
  const std::string whole = with_cereal(sample_shape());
  std::mt19937 rng(9);
  int threw = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = whole;
    for (int k = 0; k < 1 + round % 4; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    bytes.resize(bytes.size() - rng() % 3);
    threw += decode_failure<Shape>(bytes).empty() ? 0 : 1;
  }
  EXPECT_GT(threw, 0);
}

// Through a queue, a record that is not the item's encoding is a DecodeError
// naming what was wrong, and the queue goes on.
TEST(ByteArchive, AQueueReportsBytesLeftOverOrATruncatedRecordAsDecodeError) {
  ipckit::testing::ScopedSegmentName n("archive_q");
  auto seg = ipckit::Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Point>("q");
  auto raw = ipckit::detail::SegmentAccess::open_queue(seg, "q", ipckit::ObjectKind::Queue, typeid(Point).name(), {});
  raw.put(with_cereal(Point{1, 2}) + "!", {}, ipckit::detail::Deadline::never());
  raw.put(with_cereal(Point{1, 2}).substr(0, 5), {}, ipckit::detail::Deadline::never());
  q.put({3, 4});
  for (const char* why : {"left over", "needed"}) {
    try {
      (void)q.get_nowait();
      ADD_FAILURE() << "decoded: " << why;
    } catch (const ipckit::DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(q.get_nowait(), (Point{3, 4}));
}

}  // namespace
