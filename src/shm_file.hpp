// The files behind segments: where they live, how one is created and
// published, and what an opener checks before it trusts one.
//
// A segment file appears under its name only when it is complete: it is
// built as an unnamed file (O_TMPFILE) in the shm directory, its space is
// reserved, its header written, and only then is it linked under
// `ipckit.<name>` with linkat(), which fails if the name exists. So no
// opener ever sees a half-made segment, nobody has to wait for a creator, a
// creator that dies mid-way leaves nothing behind (the kernel frees an
// unnamed file with its last descriptor), and no timing decides whether a
// segment was "abandoned": the question no longer arises.
//
// What an opener finds under a name may still have been put there by
// someone else (any local user can create files in /dev/shm), so
// `open_checked` refuses, before reading a byte of it, a file that is not a
// regular file, belongs to another user, or grants group/other more than
// the caller accepts.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::detail {

// The directory of segment files: $IPCKIT_SHM_DIR when set to an absolute
// path (a test's small tmpfs, a container's shared volume), else /dev/shm.
// Read on every call, so a process (or a forked test child) may change it.
std::string shm_dir();
// <shm_dir>/ipckit.<name>
std::string shm_path(std::string_view name);

// "segment 'demo'", the subject of every message here.
std::string seg_label(std::string_view name);

// Turns an errno from a file operation on segment `name` into the typed error.
[[noreturn]] void throw_errno(int err, std::string_view seg, const std::string& action);

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// A shared read-write mapping of a segment file, unmapped when destroyed.
class Mapping {
 public:
  // Maps `size` bytes of `fd`; throws as throw_errno does for mmap's error.
  Mapping(int fd, std::uint64_t size, std::string_view name);
  ~Mapping();
  Mapping(Mapping&& o) noexcept : base_(o.base_), size_(o.size_) { o.base_ = nullptr; }
  Mapping& operator=(Mapping&&) = delete;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  [[nodiscard]] char* base() const noexcept { return base_; }

 private:
  char* base_ = nullptr;
  std::uint64_t size_ = 0;
};

// fstat of a segment's descriptor; throws as throw_errno does.
struct stat stat_of(int fd, std::string_view name);

// Whether something (anything) is under the segment's name.
bool name_taken(std::string_view name);

// Unlinks the segment's name; false if there was none. Throws as throw_errno does.
bool remove_file(std::string_view name);

// The segment names in the shm directory, sorted (none if it cannot be read).
std::vector<std::string> list_names();

// Whom an opener trusts (see OpenOptions in segment.hpp).
struct Trust {
  mode_t mode = 0600;                // group/other bits accepted
  std::optional<uid_t> allow_owner;  // another owner accepted besides the caller
  bool any = false;                  // inspection tools: accept every owner and mode
};

struct CheckedFile {
  UniqueFd fd;
  struct stat st {};
};

// Opens <shm_dir>/ipckit.<name> for reading and writing and checks that it
// is a regular file the caller may trust. Throws NotFound, PermissionDenied
// (another owner, extra mode bits, a symbolic link), CorruptSegment (not a
// regular file), SystemError.
CheckedFile open_checked(std::string_view name, const Trust& trust);

// Throws OutOfSpace, before anything is created, if the shm directory's
// file system cannot hold `size` more bytes now (or ever).
void check_space(std::string_view name, std::uint64_t size);

// An unnamed file of `size` bytes in the shm directory, mode 0600, with all
// its space reserved (posix_fallocate): a full file system is an OutOfSpace
// here instead of a SIGBUS at the first touch of an unbacked page later.
UniqueFd create_unnamed(std::string_view name, std::uint64_t size);

// Sets the final mode and links the unnamed file under the segment's name,
// atomically and exclusively. False if the name exists.
bool publish(int fd, std::string_view name, mode_t mode);

// The lease: every participating handle keeps its segment's file open with
// a shared flock on it, so "is anyone using this segment?" has a kernel
// answer whatever the processes' users or namespaces (`ipckit gc` asks it
// with an exclusive non-blocking flock). A forked child shares its parent's
// open file, so its lease lives as long as either process keeps it.
//
// Takes the shared lease on `fd`, retrying for up to ~100 ms while a gc
// holds the file exclusively to remove it. Throws NotFound if the file was
// removed meanwhile (the name then means nothing), SystemError (naming the
// holder) if the exclusive lock outlasts the retries.
void take_lease(int fd, std::string_view name);

// For gc: removes segment `name` only if it is still the file (dev, ino)
// and no handle holds a lease on it (decided under an exclusive flock, so
// an opener racing it finds the file removed). Unused: removed; InUse: a
// lease is held; Changed: the name is another file now, or is gone.
enum class RemoveIfUnused { Removed, InUse, Changed };
RemoveIfUnused remove_if_unused(std::string_view name, std::uint64_t dev, std::uint64_t ino);
// Whether some handle holds a lease on segment `name` now (false when it cannot be opened).
bool lease_held(std::string_view name);

// Processes holding a flock/POSIX lock on the file (from /proc/locks), for
// diagnostics only: ipckit itself takes no file locks.
std::vector<int> lock_holders(const struct stat& st);

// Test-only: called, if set, at the two points of a creation where a
// creator that stalls or dies matters most. A test sets it in a child to
// delay, stop or kill the creator there. Never set in production.
enum class CreateStage {
  SpaceChecked,  // the free space was checked; nothing is created yet
  Reserved,      // the unnamed file exists and its space is reserved
  Initialised,   // the header is complete; the name is not yet linked
};
inline void (*g_create_hook)(CreateStage) = nullptr;

}  // namespace ipckit::detail
