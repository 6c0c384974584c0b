// process_table.hpp — the library's side of the process table (internal):
// what ipckit::Process calls as a child moves through its lifecycle.
#pragma once

#include <string>

#include "ipckit/process_table.hpp"

namespace ipckit::detail {

// Records `state` in this process's slot of every listed segment it has
// mapped, claiming slots (in that state) where it has none yet (a child
// right after fork). Never throws; a full table means "not listed".
void note_lifecycle(ProcessState state) noexcept;

struct ProcessSlot;
// A slot's name bytes up to the first NUL (at most 23): untrusted, escaped
// by whoever prints them.
std::string slot_name(const ProcessSlot& s);

}  // namespace ipckit::detail
