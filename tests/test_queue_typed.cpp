// The queue contract (queue_contract.hpp) for every shared-memory queue:
// Queue, ByteQueue, LifoQueue and PriorityQueue (one priority: FIFO).
#include <string>

#include "ipckit/ipckit.hpp"
#include "ipckit/lifo_queue.hpp"
#include "queue_contract.hpp"

using ipckit::QueueOptions;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

// One segment per test; reopen() opens it again by name.
class SegmentEnv {
 public:
  SegmentEnv() : seg_(Segment::create(name_.name, 4 << 20)) {}
  Segment& segment() { return seg_; }
  Segment reopened() const { return Segment::open(name_.name); }

 private:
  ScopedSegmentName name_{"typed"};
  Segment seg_;
};
template <class K>
struct Env : SegmentEnv {
  typename K::Handle open(const std::string& n, const QueueOptions& o) { return K::open(segment(), n, o); }
  typename K::Handle reopen(const std::string& n, const QueueOptions& o) {
    auto seg = reopened();
    return K::open(seg, n, o);
  }
  static bool blocked(const Child& c) { return asleep(c); }
};

// How a test reaches each kind of queue: open it, make and read items, and
// put (a priority queue puts everything at one priority: FIFO among equals).
struct FifoKind {
  using Env = ::Env<FifoKind>;
  using Handle = ipckit::Queue<std::int32_t>;
  using Item = std::int32_t;
  static constexpr bool kLifo = false;
  static Handle open(Segment& s, const std::string& n, const QueueOptions& o) { return s.queue<Item>(n, o); }
  static Item make(int i) { return i; }
  static int value(const Item& x) { return x; }
  static Item oversize(std::size_t) { return 0; }  // a fixed-size item can never be too large
  static constexpr bool kHasOversize = false;
};
struct BytesKind {
  using Env = ::Env<BytesKind>;
  using Handle = ipckit::ByteQueue;
  using Item = std::string;
  static constexpr bool kLifo = false;
  static Handle open(Segment& s, const std::string& n, const QueueOptions& o) { return s.byte_queue(n, o); }
  static Item make(int i) { return "item-" + std::to_string(i); }
  static int value(const Item& x) { return std::stoi(x.substr(5)); }
  static Item oversize(std::size_t max) { return std::string(max + 1, 'x'); }
  static constexpr bool kHasOversize = true;
};
struct LifoKind {
  using Env = ::Env<LifoKind>;
  using Handle = ipckit::LifoQueue<std::string>;
  using Item = std::string;
  static constexpr bool kLifo = true;
  static Handle open(Segment& s, const std::string& n, const QueueOptions& o) { return s.lifo_queue<Item>(n, o); }
  static Item make(int i) { return BytesKind::make(i); }
  static int value(const Item& x) { return BytesKind::value(x); }
  static Item oversize(std::size_t max) { return std::string(max, 'x'); }  // + its 8-byte length
  static constexpr bool kHasOversize = true;
};
struct PriorityKind {
  using Env = ::Env<PriorityKind>;
  using Handle = ipckit::PriorityQueue<std::string>;
  using Item = std::string;
  static constexpr bool kLifo = false;
  static Handle open(Segment& s, const std::string& n, const QueueOptions& o) { return s.priority_queue<Item>(n, o); }
  static Item make(int i) { return BytesKind::make(i); }
  static int value(const Item& x) { return BytesKind::value(x); }
  static Item oversize(std::size_t max) { return std::string(max, 'x'); }
  static constexpr bool kHasOversize = true;
};

using Kinds = ::testing::Types<FifoKind, BytesKind, LifoKind, PriorityKind>;
class KindNames {
 public:
  template <class K>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<K, FifoKind>)
      return "Queue";
    else if constexpr (std::is_same_v<K, BytesKind>)
      return "ByteQueue";
    else if constexpr (std::is_same_v<K, LifoKind>)
      return "LifoQueue";
    else
      return "PriorityQueue";
  }
};

}  // namespace

namespace queue_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(SharedMemory, QueueContract, Kinds, KindNames);
}  // namespace queue_contract
