// ipckit/task_error.hpp — how an exception a pool task threw comes back to
// the process that calls Future::get().
//
// The exception object stays in the worker; its type name (demangled,
// "std::invalid_argument") and what() travel. get() throws:
//   - the type itself, when that type is registered in the process that
//     receives the result:
//         struct OutOfStock : std::runtime_error { using std::runtime_error::runtime_error; };
//         ipckit::register_task_error<OutOfStock>();   // once, e.g. at the start of main()
//         try { f.get(); } catch (const OutOfStock& e) { e.what(); }   // the task's message
//   - TaskError otherwise, with type_name() and message().
// A registrable type is constructible from a std::string or a const char*
// (the message); an ipckit::Error subclass from (object, message), with the
// task's label ("task 7 of pool 'x'") as the object. The match is on the
// exact dynamic type: a subclass of a registered type that is not itself
// registered arrives as TaskError. Registering std::runtime_error,
// std::invalid_argument, ... works too.
//
// Where and when to register: only the pool's own process (the one that
// receives the results) uses the registry — the workers send names, never
// look them up — so registering before or after the pool forks makes no
// difference to the workers. What counts is that the type is registered when
// the failed result arrives (the pool turns it into an exception then, not
// at get()): register at startup, before submitting. Registration is
// process-wide and thread-safe; registering a type again does nothing.
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ipckit/error.hpp"

namespace ipckit {

// An exception a task threw, as Future::get() reports it (its type is not registered).
class TaskError : public Error {
 public:
  TaskError(std::string object, const std::string& message, std::string type_name, std::string original)
      : Error(std::move(object), message), type_name_(std::move(type_name)), message_(std::move(original)) {}
  // The original exception's type, demangled ("std::runtime_error").
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  // Its what().
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

namespace detail {

// Makes the registered exception from the task's label and message.
using TaskErrorFactory = std::exception_ptr (*)(const std::string& label, const std::string& what);
void add_task_error_type(const std::type_info& type, TaskErrorFactory make);

// The demangled name of a type ("std::runtime_error"), as the workers send it.
std::string demangle(const char* mangled);
// The demangled dynamic type of the exception being handled ("unknown" if none).
std::string current_exception_type_name();

// The exception a failed task's future holds: the registered type named
// `type_name` made with `what`, or TaskError. `label` names the task.
std::exception_ptr task_failure(const std::string& label, const std::string& type_name, const std::string& what);

template <class E>
std::exception_ptr make_task_error(const std::string& label, const std::string& what) {
  if constexpr (std::is_base_of_v<Error, E> && std::is_constructible_v<E, std::string, std::string>)
    return std::make_exception_ptr(E(label, what));
  else if constexpr (std::is_constructible_v<E, std::string>)
    return std::make_exception_ptr(E(what));
  else
    return std::make_exception_ptr(E(what.c_str()));
}

}  // namespace detail

template <class E>
void register_task_error() {
  static_assert(std::is_class_v<E> && !std::is_abstract_v<E>, "register_task_error<E>(): E must be a concrete class");
  static_assert(std::is_constructible_v<E, std::string> || std::is_constructible_v<E, const char*> ||
                    (std::is_base_of_v<Error, E> && std::is_constructible_v<E, std::string, std::string>),
                "register_task_error<E>(): E must be constructible from its message (a std::string or a const char*)");
  detail::add_task_error_type(typeid(E), &detail::make_task_error<E>);
}

}  // namespace ipckit
