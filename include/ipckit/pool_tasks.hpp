// ipckit/pool_tasks.hpp — tasks registered by name, for named pools.
//
//   int square(int n) { return n * n; }
//   IPCKIT_TASK(square);                         // registered as "square", at static-init time
//   IPCKIT_TASK(sq, square);                     // the same function, as "sq"
//   ipckit::pool_tasks().add("square", square);  // or at run time, before serving or submitting
//
// A named pool's workers are separate programs (serve_pool): a task travels
// as its name, and each worker runs the function its own program registered
// under that name. The registry is per process; the worker program and the
// client both register the tasks (typically from one shared source file).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "ipckit/pool.hpp"

namespace ipckit {

class PoolTasks {
 public:
  struct Entry {
    std::uintptr_t fn;
    detail::InvokeFn invoke;
    // fn over a chunk of map() inputs (detail/pool_map.hpp); null unless fn
    // takes one parameter and returns a value.
    detail::InvokeFn chunk = nullptr;
  };

  // Registers fn (a function pointer or captureless lambda) as `name`.
  // InvalidArgument for an empty name, or one taken by another function.
  template <class R, class... P>
  void add(const std::string& name, R (*fn)(P...)) {
    detail::InvokeFn chunk = nullptr;
    if constexpr (sizeof...(P) == 1 && !std::is_void_v<R>)
      chunk = &detail::invoke_chunk<R (*)(P...), R, std::decay_t<P>...>;
    add_entry(name,
              {reinterpret_cast<std::uintptr_t>(fn), &detail::invoke_task<R (*)(P...), R, std::decay_t<P>...>, chunk});
  }
  template <class F>
  requires(std::is_convertible_v<F, decltype(+std::declval<F>())> &&
           !std::is_pointer_v<F>) void add(const std::string& name, F fn) {
    add(name, +fn);
  }
  // The task registered as `name`; false if none.
  bool find(std::string_view name, Entry& out) const;
  // The name fn is registered as; empty if none.
  [[nodiscard]] std::string name_of(std::uintptr_t fn) const;
  // The same, and its entry.
  [[nodiscard]] std::string name_of(std::uintptr_t fn, Entry& out) const;

 private:
  void add_entry(const std::string& name, Entry e);
  mutable std::mutex m_;
  std::unordered_map<std::string, Entry> by_name_;
  std::unordered_map<std::uintptr_t, std::string> by_fn_;
};

// The process's registry.
PoolTasks& pool_tasks();

}  // namespace ipckit

#define IPCKIT_DETAIL_TASK_CAT2(a, b) a##b
#define IPCKIT_DETAIL_TASK_CAT(a, b) IPCKIT_DETAIL_TASK_CAT2(a, b)
#define IPCKIT_DETAIL_TASK_2(name, fn)                                                   \
  [[maybe_unused]] static const bool IPCKIT_DETAIL_TASK_CAT(ipckit_task_, __COUNTER__) = \
      (::ipckit::pool_tasks().add(#name, fn), true)
#define IPCKIT_DETAIL_TASK_1(fn) IPCKIT_DETAIL_TASK_2(fn, fn)
#define IPCKIT_DETAIL_TASK_PICK(_1, _2, which, ...) which
// IPCKIT_TASK(fn) registers fn as "fn"; IPCKIT_TASK(name, fn) as "name".
#define IPCKIT_TASK(...) \
  IPCKIT_DETAIL_TASK_PICK(__VA_ARGS__, IPCKIT_DETAIL_TASK_2, IPCKIT_DETAIL_TASK_1, unused)(__VA_ARGS__)
