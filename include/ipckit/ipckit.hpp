// ipckit/ipckit.hpp — everything ipckit offers.
#pragma once

#include "ipckit/barrier.hpp"
#include "ipckit/condition.hpp"
#include "ipckit/current_process.hpp"
#include "ipckit/error.hpp"
#include "ipckit/event.hpp"
#include "ipckit/inspect.hpp"
#include "ipckit/lifo_queue.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/pipe.hpp"
#include "ipckit/priority_queue.hpp"
#include "ipckit/process.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/semaphore.hpp"
#include "ipckit/value.hpp"
