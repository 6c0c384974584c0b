// ipckit/detail/byte_archive.hpp — cereal archives of ipckit's own: the wire
// format of cereal's BinaryOutputArchive/BinaryInputArchive (numbers as their
// bytes, sizes as uint64, names dropped), written into a contiguous buffer and
// read from a (pointer, length) in place. cereal's binary archives go through
// a std::ostream/istream: a virtual call per field. These inline a memcpy.
//
// Bytes written by either pair decode with the other (tests pin it). The
// input side treats its bytes as hostile (they come from shared memory): it
// never reads outside them, and truncated or corrupt input throws
// cereal::Exception, which queues and pipes report as ipckit::DecodeError.
#pragma once

#include <cereal/cereal.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// The save/load/serialize functions below live in this namespace (and not in
// ipckit::detail) so that cereal's unqualified calls find them through the
// archive types and nothing else of ipckit's.
namespace ipckit::detail::archive {

// A growable contiguous output buffer. Not zero-filled on growth; kept by a
// thread from item to item, so that once it has grown to the largest item,
// encoding allocates nothing.
class ByteSink {
 public:
  void clear() noexcept { used_ = 0; }
  [[nodiscard]] std::string_view view() const noexcept { return {data_.get(), used_}; }

  void write(const void* p, std::size_t n) {
    if (n > capacity_ - used_) [[unlikely]]
      grow(n);
    if (n != 0) std::memcpy(data_.get() + used_, p, n);  // p may be null when n is 0 (an empty vector's data())
    used_ += n;
  }

 private:
  [[gnu::noinline]] void grow(std::size_t n) {
    std::size_t capacity = capacity_ < 128 ? 256 : 2 * capacity_;
    if (capacity - used_ < n) capacity = used_ + n;
    auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
    if (used_ != 0) std::memcpy(bigger.get(), data_.get(), used_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  std::size_t used_ = 0;
  std::size_t capacity_ = 0;
};

class ByteOutputArchive : public cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit ByteOutputArchive(ByteSink& sink)
      : cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision>(this), sink_(sink) {}

  void saveBinary(const void* data, std::size_t size) { sink_.write(data, size); }

 private:
  ByteSink& sink_;
};

class ByteInputArchive : public cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision> {
 public:
  ByteInputArchive(const char* data, std::size_t size)
      : cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision>(this), at_(data), end_(data + size) {}

  void loadBinary(void* data, std::size_t size) {
    if (size > left()) [[unlikely]]
      throw_truncated(size);
    if (size != 0) std::memcpy(data, at_, size);
    at_ += size;
  }

  [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - at_); }

  // A byte other than 0 or 1 in a bool's place is no bool: using it as one
  // would be undefined behaviour.
  void check_bools(const bool* b, std::size_t count) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < count; ++i)
      if (bytes[i] > 1) [[unlikely]]
        throw_not_bool(bytes[i]);
  }

  // The next size tag counts elements of `bytes` each (a vector of numbers,
  // a string): checked against what is left before the container resizes to
  // it, so that a corrupt count is an error, not a huge allocation.
  void expect_elements_of(std::size_t bytes) noexcept { element_bytes_ = bytes; }

  template <class U>
  void load_size(U& size) {
    loadBinary(std::addressof(size), sizeof size);
    const std::size_t bytes = element_bytes_;
    element_bytes_ = 0;
    if (bytes != 0 && static_cast<std::uint64_t>(size) > left() / bytes) [[unlikely]]
      throw_bad_count(static_cast<std::uint64_t>(size), bytes);
  }

  // After the item: bytes left over mean the record was not this type.
  void finish() const {
    if (at_ != end_) [[unlikely]]
      throw_left_over();
  }

 private:
  [[noreturn, gnu::noinline, gnu::cold]] void throw_truncated(std::size_t size) const {
    throw cereal::Exception("the record ends " + std::to_string(left()) + " bytes on, where " + std::to_string(size) +
                            " more were needed (truncated, or not this type)");
  }
  [[noreturn, gnu::noinline, gnu::cold]] void throw_bad_count(std::uint64_t count, std::size_t bytes) const {
    throw cereal::Exception("a count of " + std::to_string(count) + " elements of " + std::to_string(bytes) +
                            " bytes, but only " + std::to_string(left()) + " bytes are left in the record");
  }
  [[noreturn, gnu::noinline, gnu::cold]] void throw_left_over() const {
    throw cereal::Exception(std::to_string(left()) + " bytes were left over after the item (not this type)");
  }
  [[noreturn, gnu::noinline, gnu::cold]] static void throw_not_bool(unsigned byte) {
    throw cereal::Exception("a bool holds the byte " + std::to_string(byte) + " (only 0 and 1 are bools)");
  }

  const char* at_;
  const char* end_;
  std::size_t element_bytes_ = 0;
};

// Numbers: their bytes, as cereal's binary archive writes them.
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const T& t) {
  ar.saveBinary(std::addressof(t), sizeof t);
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, T& t) {
  ar.loadBinary(std::addressof(t), sizeof t);
  if constexpr (std::is_same_v<T, bool>) ar.check_bools(&t, 1);
}

// Names are not written; sizes as their type (cereal's containers: uint64).
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(ByteInputArchive, ByteOutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, cereal::SizeTag<T>& t) {
  static_assert(std::is_arithmetic_v<std::remove_reference_t<T>>, "a size tag holds a number");
  ar.load_size(t.size);
}

// Blocks of bytes (arrays, strings and vectors of numbers) as they are.
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
  using Element = std::remove_cv_t<std::remove_pointer_t<std::remove_reference_t<T>>>;  // T: the pointer's type
  if constexpr (std::is_same_v<Element, bool>)
    ar.check_bools(static_cast<const bool*>(bd.data), static_cast<std::size_t>(bd.size));
}

// Before a container of numbers or a string loads: its count is checked
// against the bytes left (see ByteInputArchive::expect_elements_of).
template <class T, class A>
void prologue(ByteInputArchive& ar, const std::vector<T, A>&) {
  if constexpr (std::is_arithmetic_v<T>) ar.expect_elements_of(sizeof(T));  // a bool of vector<bool>: 1 byte
}
template <class C, class Traits, class A>
void prologue(ByteInputArchive& ar, const std::basic_string<C, Traits, A>&) {
  ar.expect_elements_of(sizeof(C));
}

}  // namespace ipckit::detail::archive

// Polymorphic pointers (cereal/types/polymorphic.hpp) work with these
// archives too; input and output pair up for save_minimal/load_minimal.
CEREAL_REGISTER_ARCHIVE(ipckit::detail::archive::ByteOutputArchive)
CEREAL_REGISTER_ARCHIVE(ipckit::detail::archive::ByteInputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(ipckit::detail::archive::ByteInputArchive, ipckit::detail::archive::ByteOutputArchive)
