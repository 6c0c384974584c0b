// Segment files: location, exclusive publication, trust checks, space.
#include "shm_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include "ipckit/detail/label.hpp"
#include "ipckit/error.hpp"

namespace ipckit::detail {
namespace {

constexpr const char* kDefaultShmDir = "/dev/shm";
constexpr std::string_view kPrefix = "ipckit.";

std::string octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(m & 0777));
  return buf;
}

// "uid 65534 (nobody)"
std::string user_text(uid_t uid) {
  std::string s = "uid " + std::to_string(uid);
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
    s += " (" + std::string(pw.pw_name) + ")";
  return s;
}

// "6291456 bytes (6.0 MiB)"
std::string bytes_text(std::uint64_t n) {
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  std::string s = std::to_string(n) + " bytes";
  if (u >= 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.1f %s)", v, units[u]);
    s += buf;
  }
  return s;
}

struct Space {
  std::uint64_t total = 0;  // 0: the file system reports no limit
  std::uint64_t available = 0;
};

Space space_of(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return {};
  return {static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize,
          static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize};
}

[[noreturn]] void throw_no_space(std::string_view name, std::uint64_t size, const std::string& dir, bool ever) {
  const Space sp = space_of(dir);
  const std::string why =
      ever ? "the file system of " + dir + " holds only " + bytes_text(sp.total) + " in all"
           : "only " + bytes_text(sp.available) + " of " + bytes_text(sp.total) + " are free in " + dir;
  throw OutOfSpace(std::string(name), std::string(name),
                   seg_label(name) + ": cannot reserve " + bytes_text(size) + ": " + why +
                       "; ask for a smaller segment, or free space there (ipckit ls, ipckit rm)",
                   std::error_code(ENOSPC, std::generic_category()));
}

// Who owns the file at `path` and with which mode, for permission messages.
std::string owner_text(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";
  return " (it belongs to " + user_text(st.st_uid) + " with mode " + octal(st.st_mode) + ")";
}

}  // namespace

std::string shm_dir() {
  const char* env = std::getenv("IPCKIT_SHM_DIR");
  if (env == nullptr || *env == '\0') return kDefaultShmDir;
  std::string dir = env;
  if (dir.front() != '/')
    throw InvalidArgument(dir, "",
                          "IPCKIT_SHM_DIR='" + dir +
                              "' is not an absolute path; set it to a directory such as "
                              "/dev/shm, or unset it");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string shm_path(std::string_view name) { return shm_dir() + "/" + std::string(kPrefix) + std::string(name); }

std::string seg_label(std::string_view name) { return segment_label(name).text; }

void throw_errno(int err, std::string_view seg, const std::string& action) {
  const std::string what = seg_label(seg) + ": " + action + " failed: " + std::system_category().message(err);
  const std::error_code code(err, std::generic_category());
  const std::string s(seg);
  switch (err) {
    case ENOENT:
      throw NotFound(s, s, seg_label(seg) + " does not exist; create it first (Segment::create or open_or_create)",
                     code);
    case EEXIST:
      throw AlreadyExists(s, s, seg_label(seg) + " already exists; open it, or remove it first (ipckit rm " + s + ")",
                          code);
    case EACCES:
    case EPERM:
      throw PermissionDenied(s, s,
                             what + owner_text(shm_path(seg)) +
                                 "; run as the segment's owner, or have the creator pass SegmentOptions::mode",
                             code);
    case ENAMETOOLONG:
    case EINVAL:
      throw InvalidName(s, s, what, code);
    case ENOSPC:
    case ENOMEM:
    case EFBIG:
      throw OutOfSpace(s, s, what + "; free memory in " + shm_dir() + " or ask for a smaller segment", code);
    default:
      throw SystemError(s, s, what, code);
  }
}

UniqueFd::~UniqueFd() { reset(); }

void UniqueFd::reset() noexcept {
  // close() failing on a file only read and mapped loses nothing: ignored.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Mapping::Mapping(int fd, std::uint64_t size, std::string_view name) : size_(size) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) throw_errno(errno, name, "mmap");
  base_ = static_cast<char*>(base);
}

Mapping::~Mapping() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

struct stat stat_of(int fd, std::string_view name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, name, "fstat");
  return st;
}

bool name_taken(std::string_view name) {
  struct stat st {};
  return ::lstat(shm_path(name).c_str(), &st) == 0;
}

bool remove_file(std::string_view name) {
  if (::unlink(shm_path(name).c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno(errno, name, "remove");
}

std::vector<std::string> list_names() {
  std::vector<std::string> names;
  DIR* d = ::opendir(shm_dir().c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n.starts_with(kPrefix) && n.size() > kPrefix.size()) names.emplace_back(n.substr(kPrefix.size()));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

CheckedFile open_checked(std::string_view name, const Trust& trust) {
  const std::string s(name);
  const std::string path = shm_path(name);
  // O_NOFOLLOW: a planted symbolic link must not redirect us to a file of
  // the planter's choosing. O_NONBLOCK: a planted FIFO must not block open.
  CheckedFile f;
  f.fd = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (f.fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP)
      throw PermissionDenied(s, s,
                             seg_label(name) + ": " + path + " is a symbolic link" + owner_text(path) +
                                 "; ipckit never makes one, so someone planted it: remove it (ipckit rm " + s + ")",
                             std::error_code(err, std::generic_category()));
    if (err == EISDIR || err == ENXIO)
      throw CorruptSegment(s, s,
                           seg_label(name) + ": " + path +
                               " is not a regular file, so not an ipckit segment; "
                               "remove it (ipckit rm " +
                               s + ")");
    throw_errno(err, name, "open");
  }
  f.st = stat_of(f.fd.get(), name);
  if (!S_ISREG(f.st.st_mode))
    throw CorruptSegment(s, s,
                         seg_label(name) + ": " + path +
                             " is not a regular file (a FIFO or socket planted "
                             "under its name), so not an ipckit segment; remove it (ipckit rm " +
                             s + ")");
  if (trust.any) return f;

  const uid_t me = ::geteuid();
  if (f.st.st_uid != me && !(trust.allow_owner && f.st.st_uid == *trust.allow_owner))
    throw PermissionDenied(s, s,
                           seg_label(name) + " (" + path + ") belongs to " + user_text(f.st.st_uid) + ", not to you, " +
                               user_text(me) +
                               ": another user may have planted it to read or change what you put in it. "
                               "Remove it (as its owner or root: ipckit rm " +
                               s + ") or, if you trust that user, pass allow_owner = " + std::to_string(f.st.st_uid) +
                               " in OpenOptions / SegmentOptions");
  const mode_t extra = f.st.st_mode & 077 & ~(trust.mode & 077);
  if (extra != 0)
    throw PermissionDenied(
        s, s,
        seg_label(name) + " (" + path + ") has mode " + octal(f.st.st_mode) +
            ", which grants group/other access you did not ask for (" + octal(extra) + "; you accept " +
            octal(trust.mode) + "): others could read or change it. If it is meant to be shared, pass mode = " +
            octal(f.st.st_mode) + " in OpenOptions / SegmentOptions; else remove it (ipckit rm " + s + ")");
  return f;
}

void check_space(std::string_view name, std::uint64_t size) {
  const std::string dir = shm_dir();
  const Space sp = space_of(dir);
  if (sp.total == 0) return;  // no limit reported (tmpfs size=0): posix_fallocate decides
  if (size > sp.total) throw_no_space(name, size, dir, true);
  if (size > sp.available) throw_no_space(name, size, dir, false);
}

UniqueFd create_unnamed(std::string_view name, std::uint64_t size) {
  const std::string dir = shm_dir();
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    const int err = errno;
    const std::error_code code(err, std::generic_category());
    const Label who = segment_label(name);
    if (err == EOPNOTSUPP || err == EISDIR)
      raise<SystemError>(
          who, "the file system of " + dir + " cannot make unnamed files (O_TMPFILE), which segment creation needs",
          "point IPCKIT_SHM_DIR at a tmpfs", code);
    if (err == ENOENT || err == ENOTDIR)
      raise<SystemError>(who, dir + " is not a directory", "mount a tmpfs there or point IPCKIT_SHM_DIR at one", code);
    if (err == EACCES || err == EPERM)
      raise<PermissionDenied>(who, "cannot create files in " + dir + owner_text(dir),
                              "point IPCKIT_SHM_DIR at a directory you may write", code);
    throw_errno(err, name, "create");
  }
  // tmpfs gives back an interrupted fallocate whole, so retrying is exact.
  int rc;
  do {
    rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
  } while (rc == EINTR);
  if (rc == ENOSPC || rc == ENOMEM || rc == EFBIG) throw_no_space(name, size, dir, false);
  if (rc != 0) throw_errno(rc, name, "reserve space (posix_fallocate)");
  return fd;
}

bool publish(int fd, std::string_view name, mode_t mode) {
  // The final mode is set only now: nobody could open the unnamed file, and
  // nobody can see the named one before it is complete.
  if (::fchmod(fd, mode & 0777) != 0) throw_errno(errno, name, "fchmod");
  const std::string path = shm_path(name);
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  int rc = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
  if (rc != 0 && errno == ENOENT) rc = ::linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH);  // no /proc
  if (rc == 0) return true;
  if (errno == EEXIST) return false;
  throw_errno(errno, name, "publish (linkat)");
}

void take_lease(int fd, std::string_view name) {
  constexpr int kTries = 100;  // ~100 ms: a gc holds its exclusive lock for microseconds
  for (int i = 0;; ++i) {
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) throw_errno(errno, name, "take its lease (flock)");
    if (i == kTries) {
      const struct stat st = stat_of(fd, name);
      std::string holders;
      for (int pid : lock_holders(st)) holders += (holders.empty() ? " by pid " : ", ") + std::to_string(pid);
      raise<SystemError>(
          segment_label(name), "it stayed locked for removal" + holders,
          "a gc or ipckit rm stopped half-way? retry, or remove the segment (ipckit rm " + std::string(name) + ")");
    }
    ::usleep(1000);
  }
  if (stat_of(fd, name).st_nlink == 0)
    raise<NotFound>(segment_label(name), "it was removed (ipckit gc or rm) while this process opened it",
                    "create it again");
}

RemoveIfUnused remove_if_unused(std::string_view name, std::uint64_t dev, std::uint64_t ino) {
  const std::string path = shm_path(name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) return RemoveIfUnused::Changed;
  const auto same_file = [&](const struct stat& st) {
    return S_ISREG(st.st_mode) && std::uint64_t(st.st_dev) == dev && std::uint64_t(st.st_ino) == ino;
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !same_file(st)) return RemoveIfUnused::Changed;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return RemoveIfUnused::InUse;
  // Under the exclusive lock no lease can be taken; a handle that opened the
  // file meanwhile waits, then finds it unlinked and reports it removed.
  if (::stat(path.c_str(), &st) != 0 || !same_file(st)) return RemoveIfUnused::Changed;
  if (::unlink(path.c_str()) != 0) throw_errno(errno, name, "remove");
  return RemoveIfUnused::Removed;
}

bool lease_held(std::string_view name) {
  UniqueFd fd(::open(shm_path(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) return false;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return errno == EWOULDBLOCK;
  ::flock(fd.get(), LOCK_UN);
  return false;
}

std::vector<int> lock_holders(const struct stat& st) {
  char key[64];
  std::snprintf(key, sizeof key, "%02x:%02x:%llu", ::major(st.st_dev), ::minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::vector<int> pids;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos) continue;  // a waiter, not a holder
    std::istringstream words(line);
    std::string prev, word;
    while (words >> word) {
      if (word == key) {
        const int pid = std::atoi(prev.c_str());
        if (pid > 0 && std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
        break;
      }
      prev = word;
    }
  }
  return pids;
}

}  // namespace ipckit::detail
