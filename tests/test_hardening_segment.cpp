// Hardening tests for the segment layer: stopped peers, hostile neighbours and
// corrupted shared memory (issue: every promise holds against them).
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
