// worker_local.cpp — the teardown list of worker_local (see worker_local.hpp).
#include "ipckit/worker_local.hpp"

#include <algorithm>
#include <vector>

#include "ipckit/task_error.hpp"

namespace ipckit::detail {

namespace {

struct Emplaced {
  void* slot;
  void (*destroy)(void*);
};
// Never destroyed: worker_local globals are destroyed at exit in any order
// and take themselves off this list.
std::vector<Emplaced>& emplaced() {
  static auto* list = new std::vector<Emplaced>;  // NOLINT(cppcoreguidelines-owning-memory): lives for the process
  return *list;
}

}  // namespace

void note_emplaced(void* slot, void (*destroy)(void*)) { emplaced().push_back({slot, destroy}); }

void note_reset(void* slot) noexcept {
  std::vector<Emplaced>& list = emplaced();
  std::erase_if(list, [&](const Emplaced& e) { return e.slot == slot; });
}

void run_worker_teardown() noexcept {
  std::vector<Emplaced>& list = emplaced();
  while (!list.empty()) {
    const Emplaced last = list.back();
    last.destroy(last.slot);  // takes itself off the list (reset())
    if (!list.empty() && list.back().slot == last.slot) list.pop_back();
  }
}

void raise_empty_worker_local(const char* name, const std::type_info& type) {
  const std::string what = "worker_local" + (name != nullptr && *name != '\0' ? " '" + std::string(name) + "'" : "") +
                           " <" + demangle(type.name()) + ">";
  throw EmptyWorkerLocal(name != nullptr ? name : "",
                         "ipckit: " + what + " is empty in process " + std::to_string(::getpid()) +
                             "; fill it with emplace() in the pool's initializer (PoolOptions::initializer), "
                             "or check has_value() before using it");
}

}  // namespace ipckit::detail
