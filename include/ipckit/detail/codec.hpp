// ipckit/detail/codec.hpp — how a queue item or a pipe message becomes bytes
// and back: three codecs, chosen at compile time (see below). Queues and
// pipes share them.
#pragma once

#include <algorithm>
#include <cereal/archives/binary.hpp>  // the fallback, and what users of ipckit's queues include today
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/detail/byte_archive.hpp"

namespace ipckit::detail {

// The fallback's buffers (see kByteArchiveItem): a growable output buffer
// reused by every put() of a thread, and a read-only view of one record.
class EncodeBuffer : public std::streambuf {
 public:
  void reset() { used_ = 0; }
  [[nodiscard]] std::string_view view() const { return {data_.data(), used_}; }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const auto need = used_ + static_cast<std::size_t>(n);
    if (need > data_.size()) data_.resize(std::max(need, 2 * data_.size() + 64));
    if (n != 0) std::memcpy(data_.data() + used_, s, static_cast<std::size_t>(n));  // s may be null when n is 0
    used_ = need;
    return n;
  }
  int_type overflow(int_type ch) override {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    const char c = traits_type::to_char_type(ch);
    xsputn(&c, 1);
    return ch;
  }

 private:
  std::string data_;
  std::size_t used_ = 0;
};

class DecodeBuffer : public std::streambuf {
 public:
  void point(const char* p, std::size_t n) {
    char* b = const_cast<char*>(p);
    setg(b, b, b + n);
  }
};

// How an item becomes bytes. Three codecs, chosen at compile time:
//  - Bitwise: a trivially copyable T that cereal has no serialization for (a
//    plain struct of numbers and arrays, or a number or enum) travels as its
//    own bytes — no serialize() needed, one copy each way. (A raw pointer in
//    it would arrive as the same address: meaningless in another process.)
//  - Contiguous: std::string and std::vector of numbers travel as cereal
//    writes them (a 64-bit count, then the elements' bytes), but are written
//    straight into the ring and read without zero-filling first.
//  - Cereal: everything else, through a fresh archive per item (cereal's
//    pointer tracking and class versions must not span items): ipckit's
//    byte archives (byte_archive.hpp), the wire format of cereal's binary
//    archives without their streams.
template <class T>
inline constexpr bool kByteArchiveItem = cereal::traits::is_output_serializable<T, archive::ByteOutputArchive>::value&&
    cereal::traits::is_input_serializable<T, archive::ByteInputArchive>::value;
// A type whose save()/load() are written for cereal's binary archives only
// (not templates) still travels, through them and their streams.
template <class T>
inline constexpr bool kBinaryArchiveItem =
    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value&&
        cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

// Any serialization cereal would call for T, even a one-sided one.
template <class T>
inline constexpr bool kCerealSees = cereal::traits::is_output_serializable<T, archive::ByteOutputArchive>::value ||
                                    cereal::traits::is_input_serializable<T, archive::ByteInputArchive>::value ||
                                    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value ||
                                    cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

template <class T>
inline constexpr bool kBitwiseItem = std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                                     (std::is_trivially_copyable_v<T> && std::is_class_v<T> && !kCerealSees<T>);

template <class T>
struct ContiguousItem : std::false_type {};
template <>
struct ContiguousItem<std::string> : std::true_type {
  using Element = char;
};
template <class E>
struct ContiguousItem<std::vector<E>>
    : std::bool_constant<std::is_arithmetic_v<E> && !std::is_same_v<E, bool> && alignof(E) <= 8> {
  using Element = E;
};
template <class T>
inline constexpr bool kContiguousItem = ContiguousItem<T>::value;

template <class T>
void check_item_type() {
  static_assert(!std::is_pointer_v<T>, "a pointer means nothing in another process: queue what it points to");
  static_assert(kBitwiseItem<T> || kContiguousItem<T> || kByteArchiveItem<T> || kBinaryArchiveItem<T>,
                "queue items must be trivially copyable, or serializable by cereal (a serialize() or "
                "save()/load(), and the cereal/types/... header for standard containers)");
}

// This thread's archive of a kind (ReusedOutput, ReusedInput), one per
// nesting level: an item's save() may itself put an item (into another queue,
// a pipe) while its own encoding is half-written, and a load() may get one.
template <class Slot>
class PerThread {
 public:
  PerThread() : slot_(level_ == 0 ? first() : deeper(level_)) { ++level_; }
  ~PerThread() { --level_; }
  PerThread(const PerThread&) = delete;
  PerThread& operator=(const PerThread&) = delete;
  [[nodiscard]] Slot& get() const noexcept { return slot_; }

 private:
  [[gnu::noinline]] static Slot& deeper(unsigned level) {
    thread_local std::vector<std::unique_ptr<Slot>> slots;
    while (slots.size() < level) slots.push_back(std::make_unique<Slot>());
    return *slots[level - 1];
  }
  // Function-local: its first-use check is inlined, where a static member's
  // goes through a call on every access.
  static Slot& first() {
    thread_local Slot slot;
    return slot;
  }
  static inline thread_local unsigned level_ = 0;
  Slot& slot_;
};

// The encoding of `item` through a byte archive; valid until this thread's
// next encode.
template <class T>
std::string_view encode_with_byte_archive(const T& item) {
  const PerThread<archive::ReusedOutput> mine;
  archive::ReusedOutput& out = mine.get();
  try {
    out.start()(item);
  } catch (...) {
    out.discard();
    throw;
  }
  return out.view();
}

template <class T>
void decode_with_byte_archive(T& item, const char* p, std::size_t n) {
  const PerThread<archive::ReusedInput> mine;
  archive::ReusedInput& in = mine.get();
  try {
    in.start(p, n)(item).finish();
  } catch (...) {
    in.discard();
    throw;
  }
}

// The encoding of `item` as at most two pieces (the second may be empty);
// valid until this thread's next encode.
template <class T>
std::pair<std::string_view, std::string_view> encode_pieces(const T& item) {
  check_item_type<T>();
  if constexpr (kBitwiseItem<T>) {
    return {{reinterpret_cast<const char*>(&item), sizeof(T)}, {}};
  } else if constexpr (kContiguousItem<T>) {
    thread_local std::uint64_t count;
    count = item.size();
    return {{reinterpret_cast<const char*>(&count), sizeof count},
            {reinterpret_cast<const char*>(item.data()), item.size() * sizeof(typename ContiguousItem<T>::Element)}};
  } else if constexpr (kByteArchiveItem<T>) {
    return {encode_with_byte_archive(item), {}};
  } else {
    thread_local EncodeBuffer buf;
    thread_local std::ostream os(&buf);
    buf.reset();
    {
      cereal::BinaryOutputArchive ar(os);
      ar(item);
    }
    return {buf.view(), {}};
  }
}

// The encoding of `item` in one piece; valid until this thread's next encode.
template <class T>
std::string_view encode(const T& item) {
  const auto [first, second] = encode_pieces(item);
  if (second.empty()) return first;
  thread_local std::string joined;
  joined.assign(first);
  joined.append(second);
  return joined;
}

[[noreturn]] void throw_wrong_size(std::size_t got, std::size_t want_at_least, const char* type);

template <class T>
void decode_into(T& out, const char* p, std::size_t n) {
  check_item_type<T>();
  if constexpr (kBitwiseItem<T>) {
    if (n != sizeof(T)) throw_wrong_size(n, sizeof(T), typeid(T).name());
    std::memcpy(static_cast<void*>(&out), p, sizeof(T));
  } else if constexpr (kContiguousItem<T>) {
    using E = typename ContiguousItem<T>::Element;
    std::uint64_t count = 0;
    if (n < sizeof count) throw_wrong_size(n, sizeof count, typeid(T).name());
    std::memcpy(&count, p, sizeof count);
    if ((n - sizeof count) / sizeof(E) != count || (n - sizeof count) % sizeof(E) != 0)
      throw_wrong_size(n, sizeof count + count * sizeof(E), typeid(T).name());
    // The payload sits 8 bytes into an 8-aligned record: aligned for E.
    const E* first = reinterpret_cast<const E*>(p + sizeof count);
    out.assign(first, first + count);  // no zero-fill before the copy, unlike resize()
  } else if constexpr (kByteArchiveItem<T>) {
    decode_with_byte_archive(out, p, n);
  } else {
    thread_local DecodeBuffer buf;
    thread_local std::istream is(&buf);
    buf.point(p, n);
    is.clear();
    cereal::BinaryInputArchive ar(is);
    ar(out);
  }
}

}  // namespace ipckit::detail
