// Hardening tests for the semaphore layer: stopped peers, hostile neighbours and
// corrupted shared memory (issue: every promise holds against them).
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
