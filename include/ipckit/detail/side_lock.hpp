// Moved to src/side_lock.hpp (internal, not installed). This forwarder keeps
// `#include "ipckit/detail/side_lock.hpp"` in src/queue.cpp and
// src/priority_queue.cpp building until they include "side_lock.hpp"; then
// delete it (and its install exclusion in CMakeLists.txt).
#pragma once
#include "../../../src/side_lock.hpp"
