// ipckit/value.hpp — Value<T> and Array<T>: plain data shared by name.
//
// Python's multiprocessing.Value / Array (and RawValue / RawArray) for
// trivially copyable T. The seed's pattern translates directly:
//
//   auto counter = seg.value<std::int64_t>("counter");
//   auto array = seg.array<std::int32_t>("array", 3);
//   { std::lock_guard g(counter.get_lock()); counter.set(counter.get() + 1); array[0] += 1; }
//
// Three ways to guard one, part of its type tag (opening it another way is
// TypeMismatch, naming the way it was created):
//   seg.value<T>(name)              its own RLock: get_lock() returns an RLock&;
//   seg.value<T>(name, lock)        Python's `lock=`: an existing Lock or RLock of
//                                   the same segment guards it (several values may
//                                   share one); get_lock() returns that lock (a
//                                   Lock& or RLock&, both usable with std::lock_guard).
//                                   Every process must bind the same lock;
//   seg.raw_value<T>(name)          Python's RawValue: no lock at all, not even a
//                                   lock word in the segment, no get_lock().
// Arrays likewise (array / raw_array, with a count or created from a sequence).
//
// `get()` and `set()` of a Value alone are atomic: for T of up to 8 bytes they
// are single atomic loads/stores, for larger T they take the value's lock
// unless the calling thread holds it already. A read-modify-write needs
// get_lock(), as in Python. Array elements and RawValue/RawArray contents are
// plain memory: ordering concurrent access to them (a lock, an Event, a
// Barrier) is the caller's job, as it is in Python.
//
// Slices are std::span views of the shared elements (`span()`,
// `subspan(offset, count)`): writes through them are seen by every process.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ipckit/detail/label.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/detail/value_state.hpp"
#include "ipckit/error.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/stats.hpp"

namespace ipckit {

template <class T>
concept Shareable = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && alignof(T) <= 64;

namespace detail {
// What Segment::bind_data finds or creates: a Value (count 1) or an Array.
struct DataSpec {
  ObjectKind kind;
  const char* type_name;  // typeid(T).name()
  std::uint32_t elem_size;
  std::uint32_t elem_align;
  std::uint64_t count;
  Guard guard;
  const LockState* lock = nullptr;  // Bound: the lock
  const void* initial = nullptr;    // `count` elements copied in if this call creates it (else zero)
};

inline constexpr std::size_t data_offset(ObjectKind kind, Guard guard) noexcept {
  if (guard == Guard::Raw) return 0;
  return kind == ObjectKind::Value ? kValueDataOffset : kArrayDataOffset;
}

template <class T>
DataSpec data_spec(ObjectKind kind, std::uint64_t count, Guard guard, const void* initial = nullptr) {
  static_assert(Shareable<T>, "Value<T> and Array<T> need a trivially copyable, non-pointer T aligned to at most 64");
  return DataSpec{kind, typeid(T).name(), sizeof(T), alignof(T), count, guard, nullptr, initial};
}

template <class T>
inline constexpr bool kAtomicAccess = std::is_trivially_copyable_v<T>&& std::atomic_ref<T>::is_always_lock_free &&
                                      sizeof(T) <= 8 && alignof(T) >= sizeof(T);

// What Array and RawArray share: `size()` elements of T in the segment,
// indexed, iterated and sliced.
template <class T>
class Elements {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Unchecked, like std::vector.
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  // Bounds-checked; throws OutOfRange naming the array.
  T& at(std::size_t i) {
    check_index(i);
    return data_[i];
  }
  const T& at(std::size_t i) const {
    check_index(i);
    return data_[i];
  }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  // The whole array (Python's get_obj() / a[:]) as a view of the shared elements.
  std::span<T> span() noexcept { return {data_, size_}; }
  std::span<const T> span() const noexcept { return {data_, size_}; }
  // Elements [offset, offset + count) (to the end by default: a[offset:]);
  // throws OutOfRange naming the array unless the range lies inside it.
  std::span<T> subspan(std::size_t offset, std::size_t count = std::dynamic_extent) {
    return span().subspan(offset, checked_count(offset, count));
  }
  std::span<const T> subspan(std::size_t offset, std::size_t count = std::dynamic_extent) const {
    return span().subspan(offset, checked_count(offset, count));
  }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }

 protected:
  Elements(T* data, std::size_t count, Label label) : data_(data), size_(count), label_(std::move(label)) {}

 private:
  void check_index(std::size_t i) const {
    if (i >= size_)
      raise<OutOfRange>(label_, "index " + std::to_string(i) + " is out of range (size " + std::to_string(size_) + ")",
                        "use an index below size()");
  }
  std::size_t checked_count(std::size_t offset, std::size_t count) const {
    if (offset <= size_ && count == std::dynamic_extent) return size_ - offset;
    if (offset <= size_ && count <= size_ - offset) return count;
    raise<OutOfRange>(label_,
                      "elements [" + std::to_string(offset) + ", " + std::to_string(offset) + " + " +
                          std::to_string(count) + ") are out of range (size " + std::to_string(size_) + ")",
                      "use a range inside 0.." + std::to_string(size_));
  }
  T* data_;
  std::size_t size_;
  Label label_;
};
}  // namespace detail

template <class T, class L>
class Value {
  static_assert(Shareable<T>, "Value<T> needs a trivially copyable, non-pointer T aligned to at most 64");
  static_assert(ValueLock<L>, "a Value is guarded by an ipckit::Lock or ipckit::RLock");

 public:
  [[nodiscard]] T get() const {
    if constexpr (detail::kAtomicAccess<T>) {
      return std::atomic_ref<T>(*data_).load(std::memory_order_acquire);
    } else {
      if (lock_.held_by_me()) return *data_;
      std::lock_guard g(lock_);
      return *data_;
    }
  }
  void set(const T& v) {
    if constexpr (detail::kAtomicAccess<T>) {
      std::atomic_ref<T>(*data_).store(v, std::memory_order_release);
    } else if (lock_.held_by_me()) {
      *data_ = v;
    } else {
      std::lock_guard g(lock_);
      *data_ = v;
    }
  }
  // The lock guarding read-modify-write sequences (Python's get_lock()): the
  // value's own RLock, or the Lock/RLock it was bound to.
  [[nodiscard]] L& get_lock() const noexcept { return lock_; }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] ValueStats stats() const { return detail::value_stats(lock_.stats(), data_, 1); }  // a snapshot

 private:
  // Made by Segment::value() (through detail::SegmentAccess); `data` lies in
  // the segment that `lock` keeps mapped.
  friend class detail::SegmentAccess;
  Value(T* data, L lock, detail::Label label) : lock_(std::move(lock)), data_(data), label_(std::move(label)) {}
  mutable L lock_;
  T* data_;
  detail::Label label_;
};

// Python's RawValue: no lock. get()/set() are plain reads and writes.
template <class T>
class RawValue {
  static_assert(Shareable<T>, "RawValue<T> needs a trivially copyable, non-pointer T aligned to at most 64");

 public:
  [[nodiscard]] T get() const noexcept { return *data_; }
  void set(const T& v) noexcept { *data_ = v; }
  // The shared value in place (a struct's fields: v.ref().x = 1).
  T& ref() noexcept { return *data_; }
  const T& ref() const noexcept { return *data_; }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] ValueStats stats() const { return detail::value_stats(std::nullopt, data_, 1); }  // a snapshot

 private:
  // Made by Segment::raw_value() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  RawValue(T* data, std::shared_ptr<const void> keepalive, detail::Label label)
      : keep_(std::move(keepalive)), data_(data), label_(std::move(label)) {}
  std::shared_ptr<const void> keep_;
  T* data_;
  detail::Label label_;
};

template <class T, class L>
class Array : public detail::Elements<T> {
  static_assert(Shareable<T>, "Array<T> needs a trivially copyable, non-pointer T aligned to at most 64");
  static_assert(ValueLock<L>, "an Array is guarded by an ipckit::Lock or ipckit::RLock");

 public:
  // Hold it for read-modify-write (Python's get_lock()).
  [[nodiscard]] L& get_lock() const noexcept { return lock_; }
  // A read-only snapshot of the first max_elements elements (ipckit/stats.hpp).
  [[nodiscard]] ValueStats stats(std::size_t max_elements = SIZE_MAX) const {
    return detail::value_stats(lock_.stats(), this->data(), this->size(), max_elements);
  }

 private:
  // Made by Segment::array() (through detail::SegmentAccess). `count` is the
  // validated length from the segment's directory; `data` lies in the
  // segment that `lock` keeps mapped.
  friend class detail::SegmentAccess;
  Array(T* data, std::size_t count, L lock, detail::Label label)
      : detail::Elements<T>(data, count, std::move(label)), lock_(std::move(lock)) {}
  mutable L lock_;
};

// Python's RawArray: no lock.
template <class T>
class RawArray : public detail::Elements<T> {
  static_assert(Shareable<T>, "RawArray<T> needs a trivially copyable, non-pointer T aligned to at most 64");

 public:
  [[nodiscard]] ValueStats stats(std::size_t max_elements = SIZE_MAX) const {
    return detail::value_stats(std::nullopt, this->data(), this->size(), max_elements);
  }

 private:
  // Made by Segment::raw_array() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  RawArray(T* data, std::size_t count, std::shared_ptr<const void> keepalive, detail::Label label)
      : detail::Elements<T>(data, count, std::move(label)), keep_(std::move(keepalive)) {}
  std::shared_ptr<const void> keep_;
};

// ---------------------------------------------------------------- factories

namespace detail {
template <class T>
T* data_at(void* body, const DataSpec& spec) noexcept {
  return reinterpret_cast<T*>(static_cast<char*>(body) + data_offset(spec.kind, spec.guard));
}
}  // namespace detail

// The data of a Value or Array and its lock: without `lock`, the object's
// own RLock (L is RLock); with it, bound to it.
template <class T, class L>
std::pair<T*, L> Segment::bind_guarded(std::string_view name, ObjectKind kind, std::size_t count, const T* initial,
                                       const L* lock) {
  auto spec = detail::data_spec<T>(kind, count, lock ? detail::Guard::Bound : detail::Guard::Own, initial);
  if (lock != nullptr) spec.lock = detail::SegmentAccess::state_of(*lock);
  void* body = bind_data(name, spec);
  T* data = detail::data_at<T>(body, spec);
  if (lock != nullptr) return {data, *lock};
  return {data, detail::SegmentAccess::make<L>(static_cast<detail::LockState*>(body), keepalive(),
                                               label_of(kind, name).part("its lock"))};
}

template <class T, class L>
Value<T, L> Segment::make_value(std::string_view name, const T* initial, const L* lock) {
  auto [data, guard] = bind_guarded<T>(name, ObjectKind::Value, 1, initial, lock);
  return detail::SegmentAccess::make<Value<T, L>>(data, std::move(guard), label_of(ObjectKind::Value, name));
}

template <class T, class L>
Array<T, L> Segment::make_array(std::string_view name, std::size_t count, const T* initial, const L* lock) {
  auto [data, guard] = bind_guarded<T>(name, ObjectKind::Array, count, initial, lock);
  return detail::SegmentAccess::make<Array<T, L>>(data, count, std::move(guard), label_of(ObjectKind::Array, name));
}

template <class T>
RawValue<T> Segment::make_raw_value(std::string_view name, const T* initial) {
  const auto spec = detail::data_spec<T>(ObjectKind::Value, 1, detail::Guard::Raw, initial);
  return detail::SegmentAccess::make<RawValue<T>>(detail::data_at<T>(bind_data(name, spec), spec), keepalive(),
                                                  label_of(ObjectKind::Value, name));
}

template <class T>
RawArray<T> Segment::make_raw_array(std::string_view name, std::size_t count, const T* initial) {
  const auto spec = detail::data_spec<T>(ObjectKind::Array, count, detail::Guard::Raw, initial);
  return detail::SegmentAccess::make<RawArray<T>>(detail::data_at<T>(bind_data(name, spec), spec), count, keepalive(),
                                                  label_of(ObjectKind::Array, name));
}

template <class T>
Value<T> Segment::value(std::string_view name) {
  return make_value<T, RLock>(name, nullptr, nullptr);
}
template <class T>
Value<T> Segment::value(std::string_view name, const T& initial) {
  return make_value<T, RLock>(name, &initial, nullptr);
}
template <class T, ValueLock L>
Value<T, L> Segment::value(std::string_view name, const L& lock) {
  return make_value<T, L>(name, nullptr, &lock);
}
template <class T, ValueLock L>
Value<T, L> Segment::value(std::string_view name, const T& initial, const L& lock) {
  return make_value<T, L>(name, &initial, &lock);
}
template <class T>
RawValue<T> Segment::raw_value(std::string_view name) {
  return make_raw_value<T>(name, nullptr);
}
template <class T>
RawValue<T> Segment::raw_value(std::string_view name, const T& initial) {
  return make_raw_value<T>(name, &initial);
}

template <class T>
Array<T> Segment::array(std::string_view name, std::size_t count) {
  return make_array<T, RLock>(name, count, nullptr, nullptr);
}
template <class T>
Array<T> Segment::array(std::string_view name, std::span<const T> values) {
  return make_array<T, RLock>(name, values.size(), values.data(), nullptr);
}
template <class T>
Array<T> Segment::array(std::string_view name, std::initializer_list<T> values) {
  return make_array<T, RLock>(name, values.size(), values.begin(), nullptr);
}
template <class T, ValueLock L>
Array<T, L> Segment::array(std::string_view name, std::size_t count, const L& lock) {
  return make_array<T, L>(name, count, nullptr, &lock);
}
template <class T, ValueLock L>
Array<T, L> Segment::array(std::string_view name, std::span<const T> values, const L& lock) {
  return make_array<T, L>(name, values.size(), values.data(), &lock);
}
template <class T, ValueLock L>
Array<T, L> Segment::array(std::string_view name, std::initializer_list<T> values, const L& lock) {
  return make_array<T, L>(name, values.size(), values.begin(), &lock);
}
template <class T>
RawArray<T> Segment::raw_array(std::string_view name, std::size_t count) {
  return make_raw_array<T>(name, count, nullptr);
}
template <class T>
RawArray<T> Segment::raw_array(std::string_view name, std::span<const T> values) {
  return make_raw_array<T>(name, values.size(), values.data());
}
template <class T>
RawArray<T> Segment::raw_array(std::string_view name, std::initializer_list<T> values) {
  return make_raw_array<T>(name, values.size(), values.begin());
}

}  // namespace ipckit
