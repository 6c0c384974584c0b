// ipckit/detail/pool_map.hpp — ProcessPool::map: Python's Executor.map over
// a process pool (included at the end of pool.hpp; include that).
//
//   for (long long sq : pool.map(square, std::views::iota(1, 101), {.chunksize = 8})) sum += sq;
//
// As in Python's ProcessPoolExecutor.map, the inputs go in chunks: one task
// runs fn over `chunksize` inputs and returns their results together, so a
// tiny task costs one message per chunk, not per input. A task is only ever
// a chunk (chunksize 1 is a chunk of one): one code path, one wire format.
// A chunk travels as its inputs, each encoded as an argument of submit() is
// (so plain structs, strings and cereal types all work), and comes back as
// its results encoded the same way; the iteration decodes one result per
// step, straight from the chunk's future.
//
// A chunk fails as a whole (Python's semantics): a task that throws on one
// input, or a worker that dies in the middle of a chunk, fails that chunk's
// future, and the iteration throws its error (TaskError, WorkerDied...) when
// it reaches the chunk's first input, after every result before it. After
// an error or a Timeout the range is finished.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

#include "ipckit/detail/lazy_range.hpp"
#include "ipckit/pool.hpp"

namespace ipckit {
namespace detail {

// A chunk task of map(): fn over each input encoded in [p, p + n) (each as
// append_encoded writes it), the results appended to `out` the same way.
template <class Fn, class R, class A>
void invoke_chunk(std::uintptr_t fn, const char* p, std::size_t n, std::string& out) {
  const Fn f = reinterpret_cast<Fn>(fn);  // NOLINT(performance-no-int-to-ptr): the submitter's own address
  out.clear();
  while (n != 0) {
    A a{};
    decode_next(a, p, n);
    append_encoded(out, f(std::move(a)));
  }
}

// The task's result and parameter types.
template <class Fn>
struct MapSignature;
template <class R, class P>
struct MapSignature<R (*)(P)> {
  using Result = R;
  using Input = std::decay_t<P>;
};
template <class Fn>
inline constexpr bool kOneParameterTask = requires {
  typename MapSignature<Fn>::Result;
};

[[noreturn]] inline void raise_bad_chunksize(const std::string& pool) {
  throw InvalidArgument(pool,
                        "ipckit: map over pool '" + pool + "': chunksize 0 puts no input in a task; use 1 or more");
}

}  // namespace detail

// map()'s results in input order: an input range (range-for, std::ranges
// algorithms), read once. Each step waits for the chunk of the next result
// (until map()'s timeout). Movable until its iteration begins.
template <class R>
class MapResults : public detail::LazyRange<MapResults<R>, R> {
 public:
  // Submits the next chunk; null at the end of the inputs.
  using SubmitNext = std::function<std::shared_ptr<detail::FutureState>()>;

  MapResults(SubmitNext submit_next, const MapOptions& options, std::string pool)
      : next_(std::move(submit_next)),
        buffersize_(options.buffersize),
        deadline_(detail::Deadline::after(options.timeout)),
        pool_(std::move(pool)) {
    while ((buffersize_ == 0 || in_flight_.size() < buffersize_) && submit_one()) {
    }
  }
  MapResults(MapResults&&) noexcept = default;
  MapResults& operator=(MapResults&&) noexcept = default;
  MapResults(const MapResults&) = delete;
  MapResults& operator=(const MapResults&) = delete;
  // As Python's map: chunks not taken by a worker yet are cancelled when
  // the range ends early (destroyed, or an error or a timeout ended it).
  ~MapResults() { cancel_rest(); }

 private:
  friend detail::LazyRange<MapResults, R>;
  R& current() { return current_; }
  using detail::LazyRange<MapResults, R>::finished_;

  bool submit_one() {
    std::shared_ptr<detail::FutureState> s = next_();
    if (s == nullptr) {
      next_ = nullptr;  // the inputs are done: let the range go
      return false;
    }
    in_flight_.push_back(std::move(s));
    return true;
  }

  // The next result into current_, or finished_. Any error finishes the
  // range, as it closes Python's generator.
  void advance() {
    try {
      if (n_ == 0 && !next_chunk()) {
        finished_ = true;
        return;
      }
      detail::decode_next(current_, p_, n_);
      ++taken_;
    } catch (...) {
      finished_ = true;
      cancel_rest();
      next_ = nullptr;
      throw;
    }
  }

  void cancel_rest() noexcept {
    for (const auto& s : in_flight_) {
      try {
        (void)detail::cancel_future(*s);
      } catch (...) {  // NOLINT(bugprone-empty-catch): best effort, as Python's
      }
    }
    in_flight_.clear();
  }

  bool next_chunk() {
    chunk_.reset();
    if (in_flight_.empty()) return false;
    detail::FutureState& s = *in_flight_.front();
    if (!s.wait_by(deadline_)) raise_timeout(s);
    if (s.error) std::rethrow_exception(s.error);
    chunk_ = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (next_ != nullptr) submit_one();  // one chunk out, the next in: buffersize in flight
    p_ = chunk_->result.data();
    n_ = chunk_->result.size();
    return true;
  }

  [[noreturn]] void raise_timeout(const detail::FutureState& s) const {
    throw Timeout(pool_, "ipckit: map over pool '" + pool_ + "': result " + std::to_string(taken_) + " (" + s.label() +
                             ") is not done by the map's timeout, " + std::to_string(in_flight_.size()) +
                             " chunk(s) still out; give map() a longer .timeout");
  }

  SubmitNext next_;  // null once every chunk is submitted
  std::size_t buffersize_;
  detail::Deadline deadline_;
  std::string pool_;
  std::deque<std::shared_ptr<detail::FutureState>> in_flight_;  // submitted, in input order
  std::shared_ptr<detail::FutureState> chunk_;                  // the chunk being read
  const char* p_ = nullptr;                                     // its results not read yet
  std::size_t n_ = 0;
  R current_{};
  std::size_t taken_ = 0;  // results read
};

template <class F, class Inputs>
auto ProcessPool::map(F fn, Inputs&& inputs, MapOptions options) {
  using Fn = decltype(+fn);  // a captureless lambda as its function pointer
  static_assert(std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>,
                "map() takes a function pointer or a captureless lambda (the workers run the same code)");
  static_assert(detail::kOneParameterTask<Fn>, "map() takes a task of one parameter");
  using R = typename detail::MapSignature<Fn>::Result;
  using A = typename detail::MapSignature<Fn>::Input;
  static_assert(!std::is_void_v<R>, "map() needs a task that returns a value; submit() void tasks");
  static_assert(std::ranges::input_range<Inputs>, "map() takes an input range (a vector, std::views::iota...)");
  if (options.chunksize == 0) detail::raise_bad_chunksize(name());

  // The inputs, read as chunks are submitted: owned if they are a temporary
  // (std::views::all), and on the heap, where the iterator into them stays valid.
  using View = std::views::all_t<Inputs>;
  struct Source {
    explicit Source(View v) : view(std::move(v)), at(std::ranges::begin(view)) {}
    View view;
    std::ranges::iterator_t<View> at;
    std::string bytes;  // a chunk's encoded inputs
  };
  auto source = std::make_shared<Source>(std::views::all(std::forward<Inputs>(inputs)));
  const auto fn_address = reinterpret_cast<std::uintptr_t>(+fn);
  const detail::InvokeFn invoke = &detail::invoke_chunk<Fn, R, A>;
  auto submit_next = [this, source, fn_address, invoke, chunk = options.chunksize] {
    Source& s = *source;
    s.bytes.clear();
    std::size_t n = 0;
    for (; n < chunk && s.at != std::ranges::end(s.view); ++s.at, ++n)
      detail::append_encoded(s.bytes, static_cast<A>(*s.at));
    return n == 0 ? nullptr : submit_bytes(fn_address, invoke, s.bytes);
  };
  return MapResults<R>(std::move(submit_next), options, name());
}

}  // namespace ipckit
