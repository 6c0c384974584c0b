// ipckit/value.hpp — Value<T> and Array<T>: plain data shared by name.
//
// Python's multiprocessing.Value / Array for trivially copyable T. Each object
// carries an RLock (`get_lock()`), so the seed's pattern translates directly:
//
//   auto counter = seg.value<std::int64_t>("counter");
//   auto array = seg.array<std::int32_t>("array", 3);
//   { std::lock_guard g(counter.get_lock()); counter.set(counter.get() + 1); array[0] += 1; }
//
// `get()` and `set()` alone are atomic: for T of up to 8 bytes they are single
// atomic loads/stores, for larger T they take the object's RLock (which the
// caller may already hold). A read-modify-write needs get_lock(), as in Python.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>

#include "ipckit/error.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/segment.hpp"

namespace ipckit {

template <class T>
concept Shareable = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && alignof(T) <= 64;

namespace detail {
inline constexpr std::uint32_t kValueLayout = 1;
inline constexpr std::uint32_t kArrayLayout = 1;
inline constexpr std::size_t kValueDataOffset = sizeof(LockState);   // 64
inline constexpr std::size_t kArrayDataOffset = 2 * sizeof(LockState);  // 128: lock, count

template <class T>
inline constexpr bool kAtomicAccess =
    std::is_trivially_copyable_v<T> && std::atomic_ref<T>::is_always_lock_free &&
    sizeof(T) <= 8 && alignof(T) >= sizeof(T);
}  // namespace detail

template <class T>
class Value {
  static_assert(Shareable<T>, "Value<T> needs a trivially copyable, non-pointer T aligned to at most 64");

 public:
  Value(void* body, std::shared_ptr<const void> keepalive, std::string label)
      : lock_(static_cast<detail::LockState*>(body), std::move(keepalive), label + " (its lock)"),
        data_(reinterpret_cast<T*>(static_cast<char*>(body) + detail::kValueDataOffset)),
        label_(std::move(label)) {}

  [[nodiscard]] T get() const {
    if constexpr (detail::kAtomicAccess<T>) {
      return std::atomic_ref<T>(*data_).load(std::memory_order_acquire);
    } else {
      std::lock_guard g(lock_);
      return *data_;
    }
  }
  void set(const T& v) {
    if constexpr (detail::kAtomicAccess<T>) {
      std::atomic_ref<T>(*data_).store(v, std::memory_order_release);
    } else {
      std::lock_guard g(lock_);
      *data_ = v;
    }
  }
  // The RLock guarding read-modify-write sequences (Python's get_lock()).
  [[nodiscard]] RLock& get_lock() const noexcept { return lock_; }
  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  [[nodiscard]] ValueStats stats() const { return detail::value_stats(lock_.stats(), data_, 1); }  // a snapshot

 private:
  mutable RLock lock_;
  T* data_;
  std::string label_;
};

template <class T>
class Array {
  static_assert(Shareable<T>, "Array<T> needs a trivially copyable, non-pointer T aligned to at most 64");

 public:
  // `count` is the validated length from the segment's directory.
  Array(void* body, std::size_t count, std::shared_ptr<const void> keepalive, std::string label)
      : lock_(static_cast<detail::LockState*>(body), std::move(keepalive), label + " (its lock)"),
        size_(count),
        data_(reinterpret_cast<T*>(static_cast<char*>(body) + detail::kArrayDataOffset)),
        label_(std::move(label)) {}

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Unchecked, like std::vector; hold get_lock() for read-modify-write.
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  // Bounds-checked; throws OutOfRange naming the array.
  T& at(std::size_t i) {
    if (i >= size_) throw_out_of_range(i);
    return data_[i];
  }
  const T& at(std::size_t i) const {
    if (i >= size_) throw_out_of_range(i);
    return data_[i];
  }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T* data() noexcept { return data_; }

  [[nodiscard]] RLock& get_lock() const noexcept { return lock_; }
  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  // A read-only snapshot of the first max_elements elements (ipckit/stats.hpp).
  [[nodiscard]] ValueStats stats(std::size_t max_elements = SIZE_MAX) const {
    return detail::value_stats(lock_.stats(), data_, size_, max_elements);
  }

 private:
  [[noreturn]] void throw_out_of_range(std::size_t i) const {
    throw OutOfRange(label_, label_ + ": index " + std::to_string(i) + " is out of range (size " +
                                 std::to_string(size_) + "); use an index below size()");
  }
  mutable RLock lock_;
  std::size_t size_;
  T* data_;
  std::string label_;
};

template <class T>
Value<T> Segment::value(std::string_view name) {
  static_assert(Shareable<T>, "Value<T> needs a trivially copyable, non-pointer T aligned to at most 64");
  detail::ObjectSpec spec{ObjectKind::Value, typeid(T).name(), sizeof(T), alignof(T), 1,
                          detail::kValueLayout, detail::kValueDataOffset + sizeof(T)};
  return Value<T>(find_or_create(name, spec), keepalive(), label(ObjectKind::Value, name));
}

template <class T>
Value<T> Segment::value(std::string_view name, const T& initial) {
  static_assert(Shareable<T>, "Value<T> needs a trivially copyable, non-pointer T aligned to at most 64");
  detail::ObjectSpec spec{ObjectKind::Value, typeid(T).name(), sizeof(T), alignof(T), 1,
                          detail::kValueLayout, detail::kValueDataOffset + sizeof(T)};
  spec.init = [](void* body, const void* arg) {
    std::memcpy(static_cast<char*>(body) + detail::kValueDataOffset, arg, sizeof(T));
  };
  spec.init_arg = &initial;
  return Value<T>(find_or_create(name, spec), keepalive(), label(ObjectKind::Value, name));
}

template <class T>
Array<T> Segment::array(std::string_view name, std::size_t count) {
  static_assert(Shareable<T>, "Array<T> needs a trivially copyable, non-pointer T aligned to at most 64");
  if (count == 0)
    throw InvalidArgument(std::string(name), label(ObjectKind::Array, name) + ": an array needs at least one element");
  if (count > (std::uint64_t{1} << 40) / sizeof(T))
    throw InvalidArgument(std::string(name), label(ObjectKind::Array, name) + ": " + std::to_string(count) +
                                                 " elements is too many for any segment");
  detail::ObjectSpec spec{ObjectKind::Array, typeid(T).name(), sizeof(T), alignof(T), count,
                          detail::kArrayLayout, detail::kArrayDataOffset + sizeof(T) * count};
  spec.init = [](void* body, const void* arg) {
    *reinterpret_cast<std::uint64_t*>(static_cast<char*>(body) + sizeof(detail::LockState)) =
        *static_cast<const std::uint64_t*>(arg);
  };
  const std::uint64_t n = count;
  spec.init_arg = &n;
  return Array<T>(find_or_create(name, spec), count, keepalive(), label(ObjectKind::Array, name));
}

}  // namespace ipckit
