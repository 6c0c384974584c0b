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
#if __has_include(<cereal/version.hpp>)
#include <cereal/version.hpp>  // since cereal 1.3.1
#endif
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <forward_list>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <valarray>
#include <vector>

// The save/load/serialize functions below live in this namespace (and not in
// ipckit::detail) so that cereal's unqualified calls find them through the
// archive types and nothing else of ipckit's.
namespace ipckit::detail::archive {

// The leaves of every encoding: numbers and the three wrappers cereal's
// binary archives handle themselves.
template <class T>
struct IsSizeTag : std::false_type {};
template <class T>
struct IsSizeTag<cereal::SizeTag<T>> : std::true_type {};
template <class T>
struct IsNameValuePair : std::false_type {};
template <class T>
struct IsNameValuePair<cereal::NameValuePair<T>> : std::true_type {};
template <class T>
struct IsBinaryData : std::false_type {};
template <class T>
struct IsBinaryData<cereal::BinaryData<T>> : std::true_type {
  using Element = std::remove_cv_t<std::remove_pointer_t<std::remove_reference_t<T>>>;  // T: the pointer's type
};

// Whether processing a T may leave something in cereal's bookkeeping in the
// archive: a smart pointer (shared ids, polymorphic type names), a class
// version (written or read once per archive), a virtual base (written once),
// deferred data. cereal calls prologue() before each value it processes,
// except the base of a base_class<B>, which is looked into here.
template <class T, template <class...> class Template>
struct IsInstance : std::false_type {};
template <template <class...> class Template, class... A>
struct IsInstance<Template<A...>, Template> : std::true_type {};

template <class T, class Archive>
constexpr bool versioned() {
  namespace t = cereal::traits;
  if constexpr (Archive::is_saving::value)
    return t::has_member_versioned_serialize<T, Archive>::value ||
           t::has_non_member_versioned_serialize<T, Archive>::value ||
           t::has_member_versioned_save<T, Archive>::value || t::has_non_member_versioned_save<T, Archive>::value ||
           t::has_member_versioned_save_minimal<T, Archive>::value ||
           t::has_non_member_versioned_save_minimal<T, Archive>::value;
  else
    return t::has_member_versioned_serialize<T, Archive>::value ||
           t::has_non_member_versioned_serialize<T, Archive>::value ||
           t::has_member_versioned_load<T, Archive>::value || t::has_non_member_versioned_load<T, Archive>::value ||
           t::has_member_versioned_load_minimal<T, Archive>::value ||
           t::has_non_member_versioned_load_minimal<T, Archive>::value;
}

template <class T, class Archive>
constexpr bool keeps_bookkeeping() {
  if constexpr (IsInstance<T, cereal::base_class>::value) {
    return keeps_bookkeeping<std::remove_cv_t<std::remove_pointer_t<decltype(T::base_ptr)>>, Archive>();
  } else {
    return IsInstance<T, std::shared_ptr>::value || IsInstance<T, std::unique_ptr>::value ||
           IsInstance<T, std::weak_ptr>::value || IsInstance<T, cereal::virtual_base_class>::value ||
           IsInstance<T, cereal::DeferredData>::value || versioned<T, Archive>();
  }
}

// A class whose one serialization is a member serialize(), unversioned: the
// archives call it as cereal's route does (prologue, serialize, epilogue),
// without the chain of `self` loads (see below).
template <class T, class Archive>
constexpr bool plain_member_serialize() {
  namespace t = cereal::traits;
  if constexpr (!std::is_class_v<T> || !t::has_member_serialize<T, Archive>::value) {
    return false;
  } else {
    constexpr bool one = Archive::is_saving::value ? t::is_output_serializable<T, Archive>::value
                                                   : t::is_input_serializable<T, Archive>::value;
    return one && !t::is_specialized<T, Archive>::value && !versioned<T, Archive>();
  }
}

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

// cereal's operator() reaches every value through the archive's `self`
// pointer, at each level of nesting: a chain of dependent loads, which every
// char store (it may alias anything) makes the compiler redo. Both archives
// therefore handle the leaves (numbers and the wrappers below) and classes
// with a plain member serialize() in their own operator(), with the same
// bytes as cereal's route; the rest takes it.

// Routes one value for either archive: leaves to the archive's number(),
// binary() and size_tag(), names dropped, a plain member serialize() called
// directly, everything else down cereal's own route (via_cereal()).
struct Route {
  template <class Archive, class T>
  static void one(Archive& ar, T&& value) {
    using V = std::remove_cvref_t<T>;
    if constexpr (std::is_arithmetic_v<V>) {
      ar.number(value);
    } else if constexpr (IsBinaryData<V>::value) {
      ar.binary(value);
    } else if constexpr (IsSizeTag<V>::value) {
      ar.size_tag(value.size);  // as its type: cereal's containers use uint64
    } else if constexpr (IsNameValuePair<V>::value) {
      one(ar, value.value);  // names are not written
    } else if constexpr (plain_member_serialize<V, Archive>()) {
      prologue(ar, value);
      cereal::access::member_serialize(ar, const_cast<V&>(value));  // as cereal's route: serialize() is not const
      epilogue(ar, value);
    } else {
      ar.via_cereal(std::forward<T>(value));
    }
  }
};

class ByteOutputArchive : public cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision> {
  using Base = cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision>;

 public:
  explicit ByteOutputArchive(ByteSink& sink) : Base(this), sink_(sink) {}

  // See ReusedOutput.
  [[nodiscard]] bool holds_bookkeeping() const noexcept { return bookkeeping_; }
  void note_bookkeeping() noexcept { bookkeeping_ = true; }

  void saveBinary(const void* data, std::size_t size) { sink_.write(data, size); }

  template <class... Types>
  ByteOutputArchive& operator()(Types&&... args) {
    (Route::one(*this, std::forward<Types>(args)), ...);
    return *this;
  }

 private:
  friend Route;
  template <class V>
  void number(const V& v) {
    saveBinary(std::addressof(v), sizeof v);
  }
  template <class B>
  void binary(const B& b) {
    saveBinary(b.data, static_cast<std::size_t>(b.size));
  }
  template <class U>
  void size_tag(const U& size) {
    number(size);
  }
  template <class T>
  void via_cereal(T&& value) {
    Base::operator()(std::forward<T>(value));
  }

  ByteSink& sink_;
  bool bookkeeping_ = false;
};

class ByteInputArchive : public cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision> {
  using Base = cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision>;

 public:
  ByteInputArchive(const char* data, std::size_t size) : Base(this), at_(data), end_(data + size) {}

  // Reads another record (see ReusedInput).
  void point(const char* data, std::size_t size) noexcept {
    at_ = data;
    end_ = data + size;
    element_bytes_ = 0;
  }
  [[nodiscard]] bool holds_bookkeeping() const noexcept { return bookkeeping_; }
  void note_bookkeeping() noexcept { bookkeeping_ = true; }

  void loadBinary(void* data, std::size_t size) {
    if (size > left()) [[unlikely]]
      throw_truncated(size);
    if (size != 0) std::memcpy(data, at_, size);
    at_ += size;
  }

  template <class... Types>
  ByteInputArchive& operator()(Types&&... args) {
    (Route::one(*this, std::forward<Types>(args)), ...);
    return *this;
  }

  [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - at_); }

  // The next size tag counts the elements of a container that allocates
  // them all before reading them: checked against the bytes left first, so
  // that a corrupt count is an error, not a huge allocation (or a long hang).
  // Numbers take exactly their size each: the count must fit the bytes left.
  void expect_numbers_of(std::size_t bytes) noexcept {
    element_bytes_ = bytes;
    exact_ = true;
  }
  // Other elements take at least a byte unless they encode to nothing (an
  // empty struct): their memory may be at most kSlack times the bytes left,
  // plus kSlackBytes (a legitimate count beyond that would need elements 64
  // times smaller encoded than in memory, by more than 64 KiB in all).
  static constexpr std::uint64_t kSlack = 64, kSlackBytes = std::uint64_t{64} * 1024;
  void expect_elements_of(std::size_t bytes) noexcept {
    element_bytes_ = bytes;
    exact_ = false;
  }

  // After the item: bytes left over mean the record was not this type.
  void finish() const {
    if (at_ != end_) [[unlikely]]
      throw_left_over();
  }

 private:
  friend Route;
  template <class V>
  void number(V& v) {
    loadBinary(std::addressof(v), sizeof v);
    if constexpr (std::is_same_v<V, bool>) check_bools(&v, 1);
  }
  template <class B>
  void binary(const B& b) {
    loadBinary(b.data, static_cast<std::size_t>(b.size));
    if constexpr (std::is_same_v<typename IsBinaryData<B>::Element, bool>)  // std::array<bool, N>, bool[N]
      check_bools(static_cast<const bool*>(b.data), static_cast<std::size_t>(b.size));
  }
  template <class T>
  void via_cereal(T&& value) {
    Base::operator()(std::forward<T>(value));
  }

  template <class U>
  void size_tag(U& size) {
    static_assert(std::is_arithmetic_v<U>, "a size tag holds a number");
    loadBinary(std::addressof(size), sizeof size);
    const std::uint64_t bytes = element_bytes_;
    element_bytes_ = 0;
    if (bytes == 0) return;
    const std::uint64_t room = exact_ ? left() : left() * kSlack + kSlackBytes;
    if (static_cast<std::uint64_t>(size) > room / bytes) [[unlikely]]
      throw_bad_count(static_cast<std::uint64_t>(size), bytes);
  }

  // A byte other than 0 or 1 in a bool's place is no bool: using it as one
  // would be undefined behaviour.
  void check_bools(const bool* b, std::size_t count) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < count; ++i)
      if (bytes[i] > 1) [[unlikely]]
        throw_not_bool(bytes[i]);
  }

  [[noreturn, gnu::noinline, gnu::cold]] void throw_truncated(std::size_t size) const {
    throw cereal::Exception("the record ends " + std::to_string(left()) + " bytes on, where " + std::to_string(size) +
                            " more were needed (truncated, or not this type)");
  }
  [[noreturn, gnu::noinline, gnu::cold]] void throw_bad_count(std::uint64_t count, std::size_t bytes) const {
    throw cereal::Exception("a count of " + std::to_string(count) + " elements of " + std::to_string(bytes) +
                            " bytes does not fit the " + std::to_string(left()) + " bytes left in the record");
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
  bool exact_ = false;
  bool bookkeeping_ = false;
};

// What cereal looks for to know the archives handle these types (its
// traits, and its own route: `ar << x`, class versions): the same as above.
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const T& t) {
  ar(t);
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, T& t) {
  ar(t);
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(ByteInputArchive, ByteOutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t);
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(ByteInputArchive, ByteOutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::SizeTag<T>& t) {
  ar(t);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar(bd);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, cereal::BinaryData<T>& bd) {
  ar(bd);
}

template <class T>
void prologue(ByteOutputArchive& ar, const T&) {
  if constexpr (keeps_bookkeeping<T, ByteOutputArchive>()) ar.note_bookkeeping();
}
template <class T>
void prologue(ByteInputArchive& ar, const T&) {
  if constexpr (keeps_bookkeeping<T, ByteInputArchive>()) ar.note_bookkeeping();
}

// Before a container that resizes to its count loads: the count is checked
// (see ByteInputArchive::expect_numbers_of).
template <class T>
void expect_elements(ByteInputArchive& ar) noexcept {
  if constexpr (std::is_arithmetic_v<T>)
    ar.expect_numbers_of(sizeof(T));  // a bool of vector<bool>: 1 byte
  else
    ar.expect_elements_of(sizeof(T));
}
template <class T, class A>
void prologue(ByteInputArchive& ar, const std::vector<T, A>&) {
  expect_elements<T>(ar);
}
template <class C, class Traits, class A>
void prologue(ByteInputArchive& ar, const std::basic_string<C, Traits, A>&) {
  expect_elements<C>(ar);
}
template <class T, class A>
void prologue(ByteInputArchive& ar, const std::deque<T, A>&) {
  expect_elements<T>(ar);
}
template <class T, class A>
void prologue(ByteInputArchive& ar, const std::list<T, A>&) {
  expect_elements<T>(ar);
}
template <class T, class A>
void prologue(ByteInputArchive& ar, const std::forward_list<T, A>&) {
  expect_elements<T>(ar);
}
template <class T>
void prologue(ByteInputArchive& ar, const std::valarray<T>&) {
  expect_elements<T>(ar);
}
template <class K, class H, class E, class A>
void prologue(ByteInputArchive& ar, const std::unordered_set<K, H, E, A>&) {
  expect_elements<K>(ar);  // reserves, rather
}
template <class K, class H, class E, class A>
void prologue(ByteInputArchive& ar, const std::unordered_multiset<K, H, E, A>&) {
  expect_elements<K>(ar);
}

// An archive kept by a thread from item to item. Building and tearing down
// cereal's archive base (four hash tables) costs more than writing a small
// item; but what one item left in its bookkeeping the next must not see (it
// must write its class versions and pointers afresh), so an archive that may
// hold some is rebuilt. That list is cereal 1.3.2's: with another version,
// every item gets a fresh archive, as cereal's own binary archives do.
#if defined(CEREAL_VERSION) && CEREAL_VERSION == 10302
inline constexpr bool kReuseArchives = true;
#else
inline constexpr bool kReuseArchives = false;
#endif

template <class Archive>
bool needs_fresh(const std::optional<Archive>& archive) noexcept {
  return !kReuseArchives || !archive || archive->holds_bookkeeping();
}

class ReusedOutput {
 public:
  ByteOutputArchive& start() {
    sink_.clear();
    if (needs_fresh(archive_)) [[unlikely]]
      archive_.emplace(sink_);
    return *archive_;
  }
  // After an item that threw: whatever it left, the next one starts afresh.
  void discard() noexcept { archive_.reset(); }
  [[nodiscard]] std::string_view view() const noexcept { return sink_.view(); }

 private:
  ByteSink sink_;
  std::optional<ByteOutputArchive> archive_;  // writes into sink_
};

class ReusedInput {
 public:
  ByteInputArchive& start(const char* data, std::size_t size) {
    if (needs_fresh(archive_)) [[unlikely]]
      archive_.emplace(data, size);
    else
      archive_->point(data, size);
    return *archive_;
  }
  void discard() noexcept { archive_.reset(); }

 private:
  std::optional<ByteInputArchive> archive_;
};

}  // namespace ipckit::detail::archive

// Polymorphic pointers (cereal/types/polymorphic.hpp) work with these
// archives too; input and output pair up for save_minimal/load_minimal.
CEREAL_REGISTER_ARCHIVE(ipckit::detail::archive::ByteOutputArchive)
CEREAL_REGISTER_ARCHIVE(ipckit::detail::archive::ByteInputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(ipckit::detail::archive::ByteInputArchive, ipckit::detail::archive::ByteOutputArchive)
