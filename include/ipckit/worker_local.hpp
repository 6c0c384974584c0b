// ipckit/worker_local.hpp — per-worker-process state for pool tasks: the
// seed's thread-local database connection, per process.
//
//   ipckit::worker_local<Db> db{"db"};                 // a global (or a static)
//   ipckit::ProcessPool pool({.initializer = [] { db.emplace("/tmp/x.sqlite"); }});
//   int count(int n) { return db->insert(n); }         // a task: this worker's own Db
//
// The pool's initializer (PoolOptions::initializer) runs once in each worker
// before it takes a task, replacement workers included, and fills the slot
// with emplace(); tasks use it through *, -> and get(). When a worker ends
// normally (the pool shuts down) the values its process emplaced are
// destroyed, the last emplaced first.
//
// In the pool's own process a worker_local is an empty slot. A worker is a
// fork of that process, so it starts with a copy of the slot: empty, unless
// the pool's process filled it before the pool started — then each worker
// has a byte copy of that value (an open connection shared with the parent:
// usually wrong; fill it in the initializer instead). A process never
// destroys such an inherited copy — not at exit, not in emplace() or reset(),
// which forget it — only what it emplaced itself.
//
// Using an empty slot (get, *, ->) throws EmptyWorkerLocal. Not
// synchronized: a worker runs one task at a time; in a process with several
// threads, fill and reset a slot from one thread before others read it.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <new>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>

#include "ipckit/error.hpp"

namespace ipckit {

// A worker_local used while empty (no initializer filled it in this process).
class EmptyWorkerLocal : public Error {
 public:
  using Error::Error;
};

namespace detail {

// Process-wide list of the worker_locals this process filled, in order.
void note_emplaced(void* slot, void (*destroy)(void*));
void note_reset(void* slot) noexcept;
// Destroys what this process emplaced, the last first. The pool's worker
// calls it before it exits; a no-op in a process that filled nothing.
void run_worker_teardown() noexcept;
[[noreturn]] void raise_empty_worker_local(const char* name, const std::type_info& type);

}  // namespace detail

template <class T>
class worker_local {
 public:
  // `name` (a string literal) appears in error messages.
  constexpr explicit worker_local(const char* name = "") noexcept : name_(name) {}
  ~worker_local() { reset(); }
  worker_local(const worker_local&) = delete;
  worker_local& operator=(const worker_local&) = delete;

  // Makes the value (destroying the one held, if any); it is destroyed at
  // the worker's exit. Returns it.
  template <class... A>
  T& emplace(A&&... args) {
    reset();
    T& value = value_.emplace(std::forward<A>(args)...);
    owner_ = ::getpid();
    detail::note_emplaced(this, &destroy);
    return value;
  }
  // Destroys the value now, if there is one.
  void reset() noexcept {
    detail::note_reset(this);
    if (owner_ == ::getpid()) {
      value_.reset();
    } else if (value_) {
      new (&value_) std::optional<T>();  // another process's value, copied by fork: forgotten, not destroyed
    }
  }

  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  // The value; throws EmptyWorkerLocal if there is none.
  [[nodiscard]] T& get() {
    if (!value_) detail::raise_empty_worker_local(name_, typeid(T));
    return *value_;
  }
  [[nodiscard]] const T& get() const {
    if (!value_) detail::raise_empty_worker_local(name_, typeid(T));
    return *value_;
  }
  T& operator*() { return get(); }
  const T& operator*() const { return get(); }
  T* operator->() { return &get(); }
  const T* operator->() const { return &get(); }
  [[nodiscard]] const char* name() const noexcept { return name_; }

 private:
  // The teardown list's entry: only the process that emplaced destroys.
  static void destroy(void* self) noexcept { static_cast<worker_local*>(self)->reset(); }
  const char* name_;
  pid_t owner_ = 0;
  std::optional<T> value_;
};

}  // namespace ipckit
