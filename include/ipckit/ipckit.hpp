// ipckit/ipckit.hpp — everything ipckit offers.
#pragma once

#include "ipckit/error.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/process.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/value.hpp"
