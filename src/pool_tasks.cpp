// pool_tasks.cpp — the process's registry of tasks by name (pool_tasks.hpp).
#include "ipckit/pool_tasks.hpp"

namespace ipckit {

PoolTasks& pool_tasks() {
  static PoolTasks* tasks = new PoolTasks();  // never destroyed: static-init registrations may outlive main's statics
  return *tasks;
}

void PoolTasks::add_entry(const std::string& name, Entry e) {
  if (name.empty()) throw InvalidArgument("", "ipckit: pool_tasks().add(): a task needs a name; pass a non-empty one");
  std::lock_guard lock(m_);
  auto [it, added] = by_name_.try_emplace(name, e);
  if (!added && it->second.fn != e.fn)
    throw InvalidArgument(name, "ipckit: pool_tasks().add(\"" + name +
                                    "\"): another function is registered under that name; register this one under "
                                    "another name");
  by_fn_.try_emplace(e.fn, name);
}

bool PoolTasks::find(std::string_view name, Entry& out) const {
  std::lock_guard lock(m_);
  const auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return false;
  out = it->second;
  return true;
}

std::string PoolTasks::name_of(std::uintptr_t fn) const {
  std::lock_guard lock(m_);
  const auto it = by_fn_.find(fn);
  return it == by_fn_.end() ? std::string() : it->second;
}

std::string PoolTasks::name_of(std::uintptr_t fn, Entry& out) const {
  std::string name = name_of(fn);
  if (!name.empty()) (void)find(name, out);
  return name;
}

}  // namespace ipckit
