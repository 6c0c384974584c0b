// ipckit/redis/hub.hpp — where a Redis-backed queue or pool lives: a server, by URL.
//
//   auto hub = ipckit::redis::connect("redis://127.0.0.1:6379/0");   // or connect(): $IPCKIT_REDIS_URL
//   auto jobs = hub.queue<Job>("jobs");                               // ipckit/redis/queue.hpp
//
// The URL: redis://[[user]:password@]host[:port][/db] (port 6379, db 0 by
// default), or unix:///path/to/redis.sock[?db=N]. TLS is not supported
// (rediss:// gets InvalidArgument). ipckit never starts a server.
//
// A Hub is a cheap handle (copies share it). It opens no connection itself:
// every queue handle it makes has its own (a blocking get occupies one),
// opened on first use and opened again after a loss. A call that loses its
// connection retries with backoff (5 ms doubling to 500 ms) until its
// deadline, then throws ConnectionLost; an untimed call retries for
// `reconnect_timeout`. A non-blocking call (try_get, put_nowait) makes one
// round trip, bounded by `nowait_timeout`.
//
// Redis Cluster: every key of one queue carries the queue's name as its hash
// tag (ipckit:{jobs}...), so each queue lives on one node, every script
// touches one slot, and a handle follows MOVED / ASK redirections to it.
// Connect to any node.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace ipckit {
class ProcessPool;
}

namespace ipckit::redis {

struct HubOptions {
  // How long an untimed call (get(), put(), join()) keeps reconnecting
  // before it throws ConnectionLost.
  std::chrono::milliseconds reconnect_timeout{30000};
  // The bound of a non-blocking call's round trip (try_get, put_nowait, qsize).
  std::chrono::milliseconds nowait_timeout{2000};
  // Each connection attempt.
  std::chrono::milliseconds connect_timeout{2000};
};

namespace detail {
struct HubState;
}

struct QueueOptions;
struct PoolOptions;
template <class T>
class Queue;
template <class T>
class JoinableQueue;
template <class T>
class PriorityQueue;
template <class T>
class JoinablePriorityQueue;

class Hub {
 public:
  // The server at `url` (see above). Throws InvalidArgument for a URL it
  // cannot parse. Does not connect.
  explicit Hub(std::string_view url, const HubOptions& options = {});

  // Queues by name (ipckit/redis/queue.hpp, defined there).
  template <class T>
  Queue<T> queue(std::string_view name, const QueueOptions& options);
  template <class T>
  Queue<T> queue(std::string_view name);
  template <class T>
  JoinableQueue<T> joinable_queue(std::string_view name, const QueueOptions& options);
  template <class T>
  JoinableQueue<T> joinable_queue(std::string_view name);
  // Priority queues by name (ipckit/redis/priority_queue.hpp, defined there).
  template <class T>
  PriorityQueue<T> priority_queue(std::string_view name, const QueueOptions& options);
  template <class T>
  PriorityQueue<T> priority_queue(std::string_view name);
  template <class T>
  JoinablePriorityQueue<T> joinable_priority_queue(std::string_view name, const QueueOptions& options);
  template <class T>
  JoinablePriorityQueue<T> joinable_priority_queue(std::string_view name);

  // A ProcessPool whose workers serve `name` on this server from any
  // machine (ipckit/redis/pool.hpp; include it).
  [[nodiscard]] ProcessPool pool(std::string_view name) const;
  [[nodiscard]] ProcessPool pool(std::string_view name, const PoolOptions& options) const;

  // Deletes the queue `name` and everything it holds (its items, dead
  // letters, counters). False if there was none.
  bool remove(std::string_view name);
  // Answers PING within `timeout` (true), or not (false).
  bool ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // The URL, with any password hidden.
  [[nodiscard]] const std::string& url() const noexcept;
  [[nodiscard]] const std::shared_ptr<detail::HubState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::HubState> s_;
};

// Hub(url, options).
Hub connect(std::string_view url, const HubOptions& options = {});
// The URL in $IPCKIT_REDIS_URL, else redis://127.0.0.1:6379/0.
Hub connect();

}  // namespace ipckit::redis
