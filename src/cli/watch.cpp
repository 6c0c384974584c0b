// `ipckit watch` (watch.hpp).
#include "watch.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <variant>

#include "inspect.hpp"
#include "ipckit/inspect.hpp"
#include "json.hpp"
#include "ps.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct WatchArgs {
  std::string seg;
  std::optional<std::string> object;
  double interval = 1.0;
  std::size_t count = 0;
  bool json = false;
};

// Queue depths of the shown objects (queues of any kind), by name.
std::map<std::string, std::uint64_t> depths(const Segment& seg, const std::optional<std::string>& only) {
  std::map<std::string, std::uint64_t> out;
  for (const auto& o : seg.objects()) {
    if (only && o.name != *only) continue;
    try {
      const auto snap = seg.inspect(o.name, 0);
      if (const auto* q = std::get_if<QueueStats>(&snap.stats)) out[o.name] = q->items;
      if (const auto* p = std::get_if<PriorityQueueStats>(&snap.stats)) out[o.name] = p->items;
    } catch (const Error&) {
      // inspect's own rows say what is wrong with it
    }
  }
  return out;
}

struct Rates {
  std::map<std::string, std::uint64_t> depth;
  std::map<std::string, std::optional<double>> per_second;  // nullopt: first snapshot
};

Rates rates(const std::map<std::string, std::uint64_t>& now, const std::map<std::string, std::uint64_t>& before,
            std::optional<double> seconds) {
  Rates r{now, {}};
  for (const auto& [name, items] : now) {
    const auto it = before.find(name);
    if (!seconds || *seconds <= 0 || it == before.end()) {
      r.per_second[name] = std::nullopt;
    } else {
      r.per_second[name] = (static_cast<double>(items) - static_cast<double>(it->second)) / *seconds;
    }
  }
  return r;
}

std::string rate_text(std::optional<double> r) {
  if (!r) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f/s", *r);
  return buf;
}

std::string snapshot_text(const Segment& seg, const WatchArgs& a, const Rates& r) {
  InspectOptions options;
  options.object = a.object;
  std::ostringstream out;
  render_inspect(out, seg, options);
  if (!r.depth.empty()) {
    out << "\n";
    Table t({"QUEUE", "DEPTH", "RATE"});
    for (const auto& [name, items] : r.depth)
      t.add({escape_text(name), std::to_string(items), rate_text(r.per_second.at(name))});
    t.print(out);
  }
  // Every process, even with an object chosen: who blocks it may wait elsewhere.
  out << "\n";
  if (const auto procs = seg.processes(); procs.empty()) {
    out << "no processes attached\n";
  } else {
    print_processes(out, procs);
  }
  return out.str();
}

std::string snapshot_json(const Segment& seg, const WatchArgs& a, const Rates& r) {
  InspectOptions options;
  options.object = a.object;
  options.json = true;
  std::ostringstream out;
  render_inspect(out, seg, options);
  Json doc = Json::parse(out.str());
  doc["time_unix"] = static_cast<std::int64_t>(std::time(nullptr));
  doc["processes"] = processes_json(seg.processes());
  for (auto& o : doc["objects"]) {
    const auto it = r.per_second.find(o["name"].get<std::string>());
    if (it != r.per_second.end()) o["rate_per_second"] = it->second ? Json(*it->second) : Json(nullptr);
  }
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

int run_watch(const WatchArgs& a) {
  if (!(a.interval > 0)) throw InvalidArgument("watch", "watch: --interval must be more than 0 seconds");
  OpenOptions look;
  look.any_owner = true;
  const Segment seg = Segment::open(a.seg, look);
  const bool tty = !a.json && ::isatty(STDOUT_FILENO) == 1;
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.interval));
  std::map<std::string, std::uint64_t> before;
  std::optional<Clock::time_point> last;
  auto next = Clock::now();
  for (std::size_t n = 0; a.count == 0 || n < a.count; ++n) {
    if (n > 0) {
      next += period;
      std::this_thread::sleep_until(next);
    }
    const auto now = Clock::now();
    const auto d = depths(seg, a.object);
    const std::optional<double> dt =
        last ? std::optional(std::chrono::duration<double>(now - *last).count()) : std::nullopt;
    const Rates r = rates(d, before, dt);
    before = d;
    last = now;
    // Built before it is written, so that a redraw never shows half a screen.
    std::string frame = a.json ? snapshot_json(seg, a, r) : snapshot_text(seg, a, r);
    if (tty) {
      frame.insert(0, "\x1b[H\x1b[2J");
      frame += "\n(every " + std::to_string(a.interval) + " s; Ctrl-C to stop)\n";
    }
    if (!tty && !a.json && n > 0) std::cout << "\n";
    std::cout << frame << std::flush;
  }
  return kExitOk;
}

}  // namespace

Command add_watch(CLI::App& app) {
  auto a = std::make_shared<WatchArgs>();
  auto* w =
      app.add_subcommand("watch", "A live view of a segment: inspect's table, queue depths and rates, process states");
  w->add_option("segment", a->seg, "Segment name")->required();
  w->add_option("object", a->object, "Only this object");
  w->add_option("--interval", a->interval, "Seconds between refreshes (default 1)");
  w->add_option("--count", a->count, "Stop after this many snapshots (default 0: until interrupted)")
      ->check(CLI::NonNegativeNumber);
  w->add_flag("--json", a->json, "One compact JSON document per snapshot, one per line");
  return {w, [a] { return run_watch(*a); }};
}

}  // namespace ipckit::cli
