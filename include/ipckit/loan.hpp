// ipckit/loan.hpp — zero-copy puts and gets: an item written in place in a
// queue's ring, and read in place.
//
//   auto frames = seg.byte_queue("frames", {.capacity_bytes = 64 << 20, .max_message = 4 << 20});
//   ipckit::ByteLoan loan = frames.loan(4 << 20);  // blocks while full
//   render(loan.data(), loan.size());              // write the item where it will be read
//   loan.publish();                                // one store makes it visible (publish(n): its first n bytes)
//
//   ipckit::ByteView view = frames.get_view();     // blocks while empty
//   checksum(view.data(), view.size());            // read it where it was written
//   view.release();                                // frees it (so does the destructor)
//
// data() is 8-aligned in both. The queue's max_message (by default a quarter
// of capacity_bytes) bounds a loan's size: set it for big items.
//
// A Queue<T> of a trivially copyable T (alignment at most 8) offers the same
// with the item typed: q.loan() -> Loan<T> (a T default-initialized in place:
// set every field) and q.get_view() -> View<T>.
//
// Forms, as put and get (queue.hpp): loan(n) blocks; loan(n, d) and
// loan_until(n, t) throw Full, loan_nowait(n) at once; try_loan(n) returns
// nullopt. get_view(), get_view(d), get_view_until(t), get_view_nowait()
// (Empty) and try_get_view(). Closed and MessageTooLarge as put and get.
//
// What a loan (view) holds: the queue's producers' (consumers') side, from
// the call that made it until publish()/abandon() (release()/keep()). Other
// producers (consumers) wait meanwhile; timed ones fail on time, naming this
// process; waiting processes take the side in no set order (one consumer
// may get most of the items). So loans are for writing an item in place,
// not for holding: a producer that needs a while to make an item writes it
// straight into the ring instead of into a buffer first, and the items of
// many producers (or consumers working on items at once) still go through
// put and get, or through a queue each.
//
// Crash-safety: an unpublished loan leaves nothing visible, whether it is
// abandoned, destroyed, or its process dies; the next producer reuses the
// room. A view whose process dies leaves its item queued (delivered again),
// as a consumer killed inside get() does; keep() does the same on purpose.
//
// A released view of a JoinableQueue counts as a get: call task_done() for
// it. A kept view, or one whose process died, got nothing: the item is queued.
//
// A loan or view belongs to the thread that took it: publish() and
// release() from another thread throw NotOwner; the destructor there
// (or in a forked child) only forgets it. This thread's own put or get on the
// same side while it holds one throws DeadlockDetected. The queue handle
// must outlive its loans and views.
#pragma once

#include <chrono>
#include <cstddef>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/error.hpp"

namespace ipckit {

namespace detail {

template <class Derived, class L>
class LoanForms;
template <class Derived, class V>
class ViewForms;

// `what` ("publish()") needs a loan or view (`core` not null: InvalidArgument)
// held by this thread (`held`: NotOwner otherwise).
void check_own_side(const QueueCore* core, bool held, const char* what);
// InvalidArgument: publish(used) past the loan's size.
[[noreturn]] void raise_publish_past(const QueueCore& core, std::size_t used, std::size_t size);

// The part of a loan or a view that owns one side of a queue: moves, and
// lets go of the side (`Drop`) when destroyed unless it was handed on.
template <class Drop>
class SideHold {
 public:
  SideHold() = default;
  SideHold(SideHold&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  SideHold& operator=(SideHold&& o) noexcept {
    if (this != &o) {
      drop();
      core_ = std::exchange(o.core_, nullptr);
    }
    return *this;
  }
  ~SideHold() { drop(); }
  explicit operator bool() const noexcept { return core_ != nullptr; }

 protected:
  explicit SideHold(QueueCore* core) noexcept : core_(core) {}
  // Lets go (Drop) if this thread holds the side; else only forgets it.
  void drop() noexcept {
    if (core_ != nullptr && Drop::held_here(*core_)) Drop::let_go(*core_);
    core_ = nullptr;
  }
  // The core, after checking that this thread holds the side (`what`: "publish()").
  QueueCore& own(const char* what) const {
    check_own_side(core_, core_ != nullptr && Drop::held_here(*core_), what);
    return *core_;
  }
  QueueCore* core_ = nullptr;
};

struct DropLent {
  static bool held_here(const QueueCore& c) noexcept { return c.holds_put_side(); }
  static void let_go(QueueCore& c) noexcept { c.drop_lent(); }
};
struct KeepViewed {
  static bool held_here(const QueueCore& c) noexcept { return c.holds_get_side(); }
  static void let_go(QueueCore& c) noexcept { c.keep_viewed(); }
};

template <class T>
inline constexpr bool kLoanableItem = kBitwiseItem<std::remove_const_t<T>> && alignof(T) <= 8;

// Loan<T> and View<T>: a ByteLoan / ByteView whose bytes are a T (const T for a view).
template <class Base, class T>
class TypedItem : public Base {
 public:
  using element_type = T;
  TypedItem() = default;
  [[nodiscard]] T* get() const noexcept { return std::launder(reinterpret_cast<T*>(this->data())); }
  T& operator*() const noexcept { return *get(); }
  T* operator->() const noexcept { return get(); }

 protected:
  explicit TypedItem(Base&& bytes) noexcept : Base(std::move(bytes)) {}
};

}  // namespace detail

// Room for one item of a ByteQueue (or of any queue's bytes), written in place.
class ByteLoan : public detail::SideHold<detail::DropLent> {
 public:
  ByteLoan() = default;
  [[nodiscard]] char* data() const noexcept { return lent_.at; }
  [[nodiscard]] std::size_t size() const noexcept { return lent_.size; }
  [[nodiscard]] std::span<char> bytes() const noexcept { return {lent_.at, lent_.size}; }
  // Makes the item visible to consumers (one store) and lets the producers'
  // side go. Throws InvalidArgument on an empty loan (default-made, moved
  // from, published or abandoned), NotOwner from another thread.
  void publish() { publish(lent_.size); }
  // The first `used` bytes only (InvalidArgument past size()).
  void publish(std::size_t used) {
    detail::QueueCore& core = own("publish()");
    if (used > lent_.size) detail::raise_publish_past(core, used, lent_.size);
    core_ = nullptr;
    core.publish_lent(lent_, used);
  }
  // Lets the producers' side go; nothing becomes visible.
  void abandon() noexcept { drop(); }

 private:
  template <class, class>
  friend class detail::LoanForms;
  ByteLoan(detail::QueueCore* core, const detail::QueueCore::Lent& lent) noexcept : SideHold(core), lent_(lent) {}
  detail::QueueCore::Lent lent_;
};

// A typed loan: a T default-initialized in the ring. publish() publishes
// sizeof(T) bytes (ByteLoan::publish(n) is still there, for the brave).
template <class T>
class Loan : public detail::TypedItem<ByteLoan, T> {
 public:
  Loan() = default;
  void publish() { ByteLoan::publish(sizeof(T)); }

 private:
  template <class, class>
  friend class detail::LoanForms;
  explicit Loan(ByteLoan&& bytes) noexcept : detail::TypedItem<ByteLoan, T>(std::move(bytes)) {
    ::new (static_cast<void*>(this->data())) T;
  }
};

// One item of a queue, read in place; the consumers' side is held until release() or keep().
class ByteView : public detail::SideHold<detail::KeepViewed> {
 public:
  ByteView() = default;
  [[nodiscard]] const char* data() const noexcept { return viewed_.at; }
  [[nodiscard]] std::size_t size() const noexcept { return viewed_.size; }
  [[nodiscard]] std::string_view bytes() const noexcept { return {viewed_.at, viewed_.size}; }
  // Frees the item (consumed) and lets the consumers' side go. The
  // destructor does this too. Throws InvalidArgument on an empty view,
  // NotOwner from another thread.
  void release() {
    detail::QueueCore& core = own("release()");
    core_ = nullptr;
    core.release_viewed();
  }
  // Lets the consumers' side go and leaves the item queued, first in line.
  void keep() noexcept { drop(); }
  ~ByteView() {
    if (core_ != nullptr && core_->holds_get_side()) {
      detail::QueueCore* core = std::exchange(core_, nullptr);
      try {
        core->release_viewed();
      } catch (...) {  // CorruptSegment while freeing: leave it queued
        core->keep_viewed();
      }
    }
  }
  ByteView(ByteView&&) noexcept = default;
  ByteView& operator=(ByteView&& o) noexcept {
    if (this != &o) {
      ByteView gone(std::move(*this));
      viewed_ = o.viewed_;
      SideHold::operator=(std::move(o));
    }
    return *this;
  }

 private:
  template <class, class>
  friend class detail::ViewForms;
  ByteView(detail::QueueCore* core, const detail::QueueCore::Viewed& viewed) noexcept
      : SideHold(core), viewed_(viewed) {}
  detail::QueueCore::Viewed viewed_;
};

// A typed view: the T in the ring.
template <class T>
class View : public detail::TypedItem<ByteView, const T> {
 public:
  View() = default;

 private:
  template <class, class>
  friend class detail::ViewForms;
  explicit View(ByteView&& bytes) noexcept : detail::TypedItem<ByteView, const T>(std::move(bytes)) {}
};

namespace detail {

// The forms of loan() on a queue handle with a `core_` (friend): with a size
// for L = ByteLoan (ByteQueue), without for L = Loan<T> (Queue<T>).
template <class Derived, class L>
class LoanForms {
  static constexpr bool kSized = std::is_same_v<L, ByteLoan>;

 public:
  L loan(std::size_t bytes) requires kSized { return loan_by(bytes, Deadline::never()); }
  template <class Rep, class Period>
  L loan(std::size_t bytes, const std::chrono::duration<Rep, Period>& timeout) requires kSized {
    return loan_by(bytes, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  L loan_until(std::size_t bytes, const std::chrono::time_point<Clock, Duration>& t) requires kSized {
    return loan_by(bytes, Deadline::at(t));
  }
  L loan_nowait(std::size_t bytes) requires kSized { return loan_by(bytes, Deadline::now()); }
  std::optional<L> try_loan(std::size_t bytes) requires kSized { return try_loan_by(bytes); }

  L loan() requires(!kSized) { return loan_by(item_bytes(), Deadline::never()); }
  template <class Rep, class Period>
  L loan(const std::chrono::duration<Rep, Period>& timeout) requires(!kSized) {
    return loan_by(item_bytes(), Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  L loan_until(const std::chrono::time_point<Clock, Duration>& t) requires(!kSized) {
    return loan_by(item_bytes(), Deadline::at(t));
  }
  L loan_nowait() requires(!kSized) { return loan_by(item_bytes(), Deadline::now()); }
  std::optional<L> try_loan() requires(!kSized) { return try_loan_by(item_bytes()); }

 private:
  static std::size_t item_bytes() {
    using T = typename L::element_type;
    static_assert(kLoanableItem<T>, "loan() needs a trivially copyable item type aligned to at most 8 bytes");
    return sizeof(T);
  }
  L loan_by(std::size_t bytes, Deadline deadline) {
    QueueCore& core = static_cast<Derived&>(*this).core_;
    QueueCore::Lent lent;
    const QueueOutcome r = core.lend(bytes, deadline, lent);
    if (!r.ok()) [[unlikely]]
      core.raise_put(r, 1);
    return L(ByteLoan(&core, lent));
  }
  std::optional<L> try_loan_by(std::size_t bytes) {
    QueueCore& core = static_cast<Derived&>(*this).core_;
    QueueCore::Lent lent;
    if (!core.lend(bytes, Deadline::now(), lent).ok()) return std::nullopt;
    return L(ByteLoan(&core, lent));
  }
};

// The forms of get_view(): V = ByteView (any size) or View<T> (sizeof(T) exactly: DecodeError otherwise).
template <class Derived, class V>
class ViewForms {
 public:
  V get_view() { return get_view_by(Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(V, get_view, get_view_until, get_view_by);
  V get_view_nowait() { return get_view_by(Deadline::now()); }
  std::optional<V> try_get_view() {
    QueueCore& core = static_cast<Derived&>(*this).core_;
    QueueCore::Viewed viewed;
    if (!core.view_first(Deadline::now(), viewed, exact_bytes()).ok()) return std::nullopt;
    return V(ByteView(&core, viewed));
  }

 private:
  static std::size_t exact_bytes() {
    if constexpr (std::is_same_v<V, ByteView>) {
      return 0;
    } else {
      using T = std::remove_const_t<typename V::element_type>;
      static_assert(kLoanableItem<T>, "get_view() needs a trivially copyable item type aligned to at most 8 bytes");
      return sizeof(T);
    }
  }
  V get_view_by(Deadline deadline) {
    QueueCore& core = static_cast<Derived&>(*this).core_;
    QueueCore::Viewed viewed;
    const QueueOutcome r = core.view_first(deadline, viewed, exact_bytes());
    if (!r.ok()) [[unlikely]]
      core.raise_get(r);
    return V(ByteView(&core, viewed));
  }
};

}  // namespace detail

}  // namespace ipckit
