// ipckit/redis.hpp — ipckit's queues over Redis Streams, between machines
// (link ipckit::redis). See redis/hub.hpp (where: a URL) and redis/queue.hpp
// (Queue, JoinableQueue: the shared-memory queues' API, at least once),
// redis/priority_queue.hpp (PriorityQueue, JoinablePriorityQueue).
#pragma once

#include "ipckit/redis/hub.hpp"
#include "ipckit/redis/inspect.hpp"
#include "ipckit/redis/pool.hpp"
#include "ipckit/redis/priority_queue.hpp"
#include "ipckit/redis/queue.hpp"
