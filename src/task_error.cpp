// task_error.cpp — the registry of task exception types (see task_error.hpp).
#include "ipckit/task_error.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace ipckit::detail {

namespace {

struct Registry {
  std::shared_mutex m;
  std::unordered_map<std::string, TaskErrorFactory> by_name;
};
// Never destroyed: a pool's collector thread may still look up while static
// destructors run at exit.
Registry& registry() {
  static auto* r = new Registry;  // NOLINT(cppcoreguidelines-owning-memory): lives for the process
  return *r;
}

}  // namespace

std::string demangle(const char* mangled) {
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

std::string current_exception_type_name() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type != nullptr ? demangle(type->name()) : std::string("unknown");
}

void add_task_error_type(const std::type_info& type, TaskErrorFactory make) {
  Registry& r = registry();
  std::string name = demangle(type.name());
  const std::unique_lock lock(r.m);
  r.by_name.try_emplace(std::move(name), make);
}

std::exception_ptr task_failure(const std::string& label, const std::string& type_name, const std::string& what) {
  TaskErrorFactory make = nullptr;
  {
    Registry& r = registry();
    const std::shared_lock lock(r.m);
    const auto it = r.by_name.find(type_name);
    if (it != r.by_name.end()) make = it->second;
  }
  if (make != nullptr) {
    try {
      return make(label, what);
    } catch (...) {  // the type's constructor threw (bad_alloc, a check of its own): report as TaskError
    }
  }
  return std::make_exception_ptr(
      TaskError(label, "ipckit: " + label + " threw " + type_name + ": " + what, type_name, what));
}

}  // namespace ipckit::detail
