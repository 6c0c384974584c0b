// ipckit/redis.hpp — ipckit's queues over Redis Streams, between machines
// (link ipckit::redis). See redis/hub.hpp (where: a URL) and redis/queue.hpp
// (Queue, JoinableQueue: the shared-memory queues' API, at least once).
#pragma once

#include "ipckit/redis/hub.hpp"
#include "ipckit/redis/pool.hpp"
#include "ipckit/redis/queue.hpp"
