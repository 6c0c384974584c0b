// ipckit/detail/lazy_range.hpp — the input range that map() and
// as_completed() return: read once, each step computed when it is taken.
//
// Derived provides `void advance()` (the next value into place, or sets
// `finished_`; may throw, and then should set `finished_` first) and
// `V& current()`; it befriends LazyRange. begin() takes the first step.
#pragma once

#include <cstddef>
#include <iterator>

namespace ipckit::detail {

template <class Derived, class V>
class LazyRange {
 public:
  class iterator {
   public:
    using value_type = V;
    using difference_type = std::ptrdiff_t;
    using reference = V&;
    using iterator_concept = std::input_iterator_tag;
    iterator() = default;
    V& operator*() const { return r_->current(); }
    V* operator->() const { return &r_->current(); }
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& i, std::default_sentinel_t) { return i.at_end(); }

   private:
    [[nodiscard]] bool at_end() const { return r_ == nullptr || r_->finished_; }
    friend class LazyRange;
    explicit iterator(Derived* r) : r_(r) {}
    Derived* r_ = nullptr;
  };

  // Takes the first step (and throws as a step does).
  iterator begin() {
    auto* self = static_cast<Derived*>(this);
    if (!started_) {
      started_ = true;
      self->advance();
    }
    return iterator(self);
  }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

 protected:
  bool finished_ = false;

 private:
  bool started_ = false;
};

}  // namespace ipckit::detail
