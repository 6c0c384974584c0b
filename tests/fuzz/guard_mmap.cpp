// Guard pages around every shared file mapping of a fuzz target.
//
// ASan does not watch mmap'd memory, and the kernel packs mappings next to
// each other: a read or write that runs off a segment's end usually lands in
// a neighbouring mapping (often a second mapping of the same segment) and
// goes unnoticed. This file, linked into each fuzz executable, replaces
// mmap(): a shared mapping of a file at an address of the kernel's choice is
// placed in the middle of a PROT_NONE reservation with kGuard bytes free on
// each side, so that such an access faults. munmap() of that mapping frees
// the guards with it. Every other mmap() passes straight through.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

// ASan's interceptor (present only in a sanitized build): going through it
// keeps its shadow memory right for the new range.
extern "C" void* __interceptor_mmap(void*, std::size_t, int, int, int, off_t) __attribute__((weak));

namespace {

constexpr std::size_t kGuard = 64 * 1024;
constexpr std::size_t kMaxGuarded = 256;

struct Guarded {
  std::uintptr_t start = 0;  // the file mapping
  std::size_t length = 0;
};

std::mutex g_mutex;
Guarded g_guarded[kMaxGuarded];

void* real_mmap(void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) {
  if (__interceptor_mmap != nullptr) return __interceptor_mmap(addr, length, prot, flags, fd, offset);
  return reinterpret_cast<void*>(::syscall(SYS_mmap, addr, length, prot, flags, fd, offset));
}

int real_munmap(void* addr, std::size_t length) { return static_cast<int>(::syscall(SYS_munmap, addr, length)); }

std::size_t page_round(std::size_t n) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

}  // namespace

extern "C" void* mmap(void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) {
  if (addr != nullptr || fd < 0 || (flags & MAP_SHARED) == 0 || (flags & MAP_FIXED) != 0 || length == 0)
    return real_mmap(addr, length, prot, flags, fd, offset);
  const std::size_t span = page_round(length);
  void* reserved = real_mmap(nullptr, span + 2 * kGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return real_mmap(addr, length, prot, flags, fd, offset);
  char* middle = static_cast<char*>(reserved) + kGuard;
  void* got = real_mmap(middle, length, prot, flags | MAP_FIXED, fd, offset);
  if (got == MAP_FAILED) {
    real_munmap(reserved, span + 2 * kGuard);
    return MAP_FAILED;
  }
  std::lock_guard g(g_mutex);
  for (auto& slot : g_guarded) {
    if (slot.length == 0) {
      slot = {reinterpret_cast<std::uintptr_t>(got), span};
      return got;
    }
  }
  // The table is full (a leak?): keep this mapping's guards for good.
  return got;
}

extern "C" void* mmap64(void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) {
  return mmap(addr, length, prot, flags, fd, offset);
}

extern "C" int munmap(void* addr, std::size_t length) {
  {
    std::lock_guard g(g_mutex);
    for (auto& slot : g_guarded) {
      if (slot.length != 0 && slot.start == reinterpret_cast<std::uintptr_t>(addr) &&
          slot.length == page_round(length)) {
        slot = {};
        return real_munmap(static_cast<char*>(addr) - kGuard, page_round(length) + 2 * kGuard);
      }
    }
  }
  return real_munmap(addr, length);
}
