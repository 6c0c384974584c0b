// Who maps which segment file (proc_maps.hpp).
#include "proc_maps.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

namespace ipckit::cli {
namespace {

// Parses one maps line: "addr perms offset MM:mm inode path"; false if it maps no file.
bool mapped_file(const std::string& line, FileId& id) {
  std::istringstream in(line);
  std::string addr, perms, offset, dev;
  std::uint64_t inode = 0;
  if (!(in >> addr >> perms >> offset >> dev >> inode) || inode == 0) return false;
  unsigned maj = 0, min = 0;
  if (std::sscanf(dev.c_str(), "%x:%x", &maj, &min) != 2) return false;
  id = {static_cast<std::uint64_t>(makedev(maj, min)), inode};
  return true;
}

enum class Read { Ok, Gone, Unreadable };

Read scan_one(pid_t pid, const std::set<FileId>& wanted, MapUsers& out) {
  const std::string path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream in(path);
  if (!in) return errno == ENOENT || errno == ESRCH ? Read::Gone : Read::Unreadable;
  std::set<FileId> seen;
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    any = true;
    FileId id;
    if (mapped_file(line, id) && wanted.count(id) && seen.insert(id).second) out.users[id].push_back(pid);
  }
  // A process whose maps read empty is a kernel thread, or one we may not read (EACCES on read).
  if (!any && in.bad()) return Read::Unreadable;
  return Read::Ok;
}

}  // namespace

bool file_id_of(const std::string& path, FileId& id, std::int64_t* ctime_unix) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  id = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  if (ctime_unix) *ctime_unix = static_cast<std::int64_t>(st.st_ctim.tv_sec);
  return true;
}

MapUsers scan_maps(const std::set<FileId>& wanted) {
  MapUsers out;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) {
    out.unreadable.push_back(0);  // nothing known: every segment may be in use
    return out;
  }
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(proc.get())) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    if (scan_one(static_cast<pid_t>(pid), wanted, out) == Read::Unreadable)
      out.unreadable.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

}  // namespace ipckit::cli
