// `ipckit put` and `ipckit get` (queue_io.hpp).
#include "queue_io.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <typeinfo>
#include <variant>

#include "ipckit/inspect.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "json.hpp"
#include "kinds.hpp"
#include "text.hpp"
#include "values.hpp"

namespace ipckit::cli {
namespace {

constexpr const char* kBytesType = "ipckit::bytes";  // ByteQueue's type name (queue.hpp)

using AnyQueue = std::variant<Queue<std::string>, JoinableQueue<std::string>, ByteQueue>;

// The segment, opened for writing: the caller's own, with any mode (they named it).
Segment open_for_io(const std::string& seg_name) {
  OpenOptions o;
  o.mode = 0777;
  return Segment::open(seg_name, o);
}

ObjectInfo find_object(const Segment& seg, const std::string& name) {
  const auto objects = seg.objects();
  const auto it = std::find_if(objects.begin(), objects.end(), [&](const auto& o) { return o.name == name; });
  if (it == objects.end())
    throw NotFound(name, "no queue '" + name + "' in segment '" + seg.name() +
                             "' (put and get do not create one; see `ipckit inspect " + seg.name() + "`)");
  return *it;
}

[[noreturn]] void refuse(const Segment& seg, const ObjectInfo& o, const std::string& why) {
  throw TypeMismatch(o.name, kind_name(o.kind) + " '" + o.name + "' in segment '" + seg.name() + "' holds " +
                                 pretty_type(o.type_name) + ": " + why +
                                 "; put and get take only queues of std::string or bytes (ByteQueue)");
}

AnyQueue open_queue(Segment& seg, const std::string& name) {
  const ObjectInfo o = find_object(seg, name);
  const bool bytes = o.type_name == kBytesType;
  const bool text = o.type_name == typeid(std::string).name();
  if (o.kind != ObjectKind::Queue && o.kind != ObjectKind::JoinableQueue) refuse(seg, o, "not a FIFO queue");
  if (!bytes && !text) refuse(seg, o, "not strings or bytes");
  const auto snap = seg.inspect(name);
  const auto* s = std::get_if<QueueStats>(&snap.stats);
  if (s == nullptr) refuse(seg, o, "no queue state");
  const QueueOptions options{.capacity_bytes = s->capacity, .max_items = s->max_items, .max_message = s->max_message};
  if (bytes) return seg.byte_queue(name, options);
  if (o.kind == ObjectKind::JoinableQueue) return seg.joinable_queue<std::string>(name, options);
  return seg.queue<std::string>(name, options);
}

struct IoArgs {
  std::string seg, queue, text;
  std::optional<double> timeout;
  std::size_t count = 1;
  bool json = false;
};

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(std::max(s, 0.0)));
}

int run_put(const IoArgs& a) {
  Segment seg = open_for_io(a.seg);
  AnyQueue q = open_queue(seg, a.queue);
  try {
    std::visit(
        [&](auto& queue) {
          if (a.timeout) {
            queue.put(a.text, seconds(*a.timeout));
          } else {
            queue.put(a.text);
          }
        },
        q);
  } catch (const Full&) {
    std::cerr << "ipckit: queue '" << escape_text(a.queue) << "' in segment '" << escape_text(a.seg)
              << "' stayed full for " << *a.timeout << " s; nothing was put\n";
    return kExitFull;
  }
  return kExitOk;
}

// One item, or nullopt when the queue stayed empty until the timeout or is closed and drained.
template <class Q>
std::optional<std::string> take(Q& queue, const IoArgs& a) {
  try {
    std::string item = a.timeout ? queue.get(seconds(*a.timeout)) : queue.get();
    if constexpr (std::is_same_v<Q, JoinableQueue<std::string>>) queue.task_done();
    return item;
  } catch (const Empty&) {
    return std::nullopt;
  } catch (const Closed&) {
    return std::nullopt;
  }
}

int run_get(const IoArgs& a) {
  Segment seg = open_for_io(a.seg);
  AnyQueue q = open_queue(seg, a.queue);
  const bool bytes = std::holds_alternative<ByteQueue>(q);
  Json items = Json::array();
  std::size_t got = 0;
  while (a.count == 0 || got < a.count) {
    auto item = std::visit([&](auto& queue) { return take(queue, a); }, q);
    if (!item) break;
    ++got;
    if (a.json) {
      items.push_back(bytes ? base64(*item) : *item);
    } else {
      std::cout << escape_text(*item) << std::endl;  // flushed: a pipe sees each item as it comes
    }
  }
  const bool complete = a.count == 0 || got == a.count;
  if (a.json)
    std::cout << dump(Json{{"segment", a.seg},
                           {"queue", a.queue},
                           {"type", bytes ? "bytes" : "string"},
                           {"encoding", bytes ? "base64" : "utf-8"},
                           {"items", std::move(items)},
                           {"complete", complete}});
  if (complete) return kExitOk;
  if (!a.json)
    std::cerr << "ipckit: got " << got << " of " << a.count << " items from queue '" << escape_text(a.queue)
              << "': it stayed empty" << (a.timeout ? " until --timeout" : "") << " or was closed\n";
  return kExitEmpty;
}

void add_common(CLI::App* sub, IoArgs& a, const char* timeout_help) {
  sub->add_option("segment", a.seg, "Segment name")->required();
  sub->add_option("queue", a.queue, "Queue name (a queue of std::string, or a ByteQueue)")->required();
  sub->add_option("--timeout", a.timeout, timeout_help)->check(CLI::NonNegativeNumber);
}

}  // namespace

std::string base64(std::string_view bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kDigits[(v >> (18 - 6 * k)) & 63u] : '=';
  }
  return out;
}

Command add_put(CLI::App& app) {
  auto a = std::make_shared<IoArgs>();
  auto* put = app.add_subcommand("put", "Put TEXT into a string or byte queue (exit status 4: full until --timeout)");
  add_common(put, *a, "Give up after this many seconds if the queue stays full (exit status 4)");
  put->add_option("text", a->text, "The item (its bytes as given)")->required();
  return {put, [a] { return run_put(*a); }};
}

Command add_get(CLI::App& app) {
  auto a = std::make_shared<IoArgs>();
  auto* get = app.add_subcommand(
      "get", "Take items from a string or byte queue, one per line (exit status 3: fewer than --count came)");
  add_common(get, *a, "Wait at most this many seconds for each item (exit status 3 if it does not come)");
  get->add_option("--count", a->count, "Items to take (default 1; 0: until closed, or empty for --timeout)")
      ->check(CLI::NonNegativeNumber);
  get->add_flag("--json", a->json, "Print one JSON document at the end (byte items in base64)");
  return {get, [a] { return run_get(*a); }};
}

}  // namespace ipckit::cli
