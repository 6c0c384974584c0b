// src/cli/proc_maps.hpp — which processes map a segment's file, from
// /proc/<pid>/maps, for `ipckit gc` and `ipckit doctor`.
//
// A mapping is matched by the file's device and inode, not by its path: a
// creator maps its segment before linking it under its name (O_TMPFILE), so
// its maps show another path, and a removed segment shows "(deleted)".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ipckit::cli {

using FileId = std::pair<std::uint64_t, std::uint64_t>;  // st_dev, st_ino

struct MapUsers {
  std::map<FileId, std::vector<pid_t>> users;  // processes mapping each wanted file
  std::vector<pid_t> unreadable;               // processes whose maps could not be read: may map any of them
};

// The file id of a path, if it exists.
bool file_id_of(const std::string& path, FileId& id, std::int64_t* ctime_unix = nullptr);

// Scans every process but this one for mappings of the files in `wanted`.
// A process that exits during the scan is skipped.
MapUsers scan_maps(const std::set<FileId>& wanted);

}  // namespace ipckit::cli
