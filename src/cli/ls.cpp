// What `ipckit ls` prints (ls.hpp).
#include "ls.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <ostream>
#include <thread>
#include <utility>

#include "ipckit/error.hpp"
#include "ipckit/process_table.hpp"
#include "json.hpp"
#include "tables.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

// The listing's shared state: outlives gather_ls() if an open is still
// running at its deadline (the thread doing it holds a reference).
struct LsWork {
  std::vector<std::string> names;
  std::vector<LsEntry> entries;
  std::vector<char> done, removed;
  std::atomic<std::size_t> next{0};
  std::mutex m;
  std::condition_variable cv;
  std::size_t finished = 0;
};

void open_one(LsWork& w, std::size_t i) {
  LsEntry e{w.names[i], std::nullopt, {}, 0};
  bool removed = false;
  // One unreadable segment (corrupt, someone else's, slow) must not hide the rest.
  try {
    OpenOptions look;  // ls only looks, so any owner's segment is listed
    look.any_owner = true;
    const Segment seg = Segment::open(e.name, look);
    e.info = seg.info();
    // Slots of dead processes are not "attached" (doctor reports them).
    for (const auto& p : seg.processes()) e.processes += p.alive ? 1 : 0;
  } catch (const NotFound&) {
    removed = true;  // removed since list()
  } catch (const Error& err) {
    e.error = err.what();
  } catch (const std::exception& err) {
    e.error = std::string("unexpected error: ") + err.what();
  }
  std::lock_guard g(w.m);
  w.entries[i] = std::move(e);
  w.removed[i] = removed ? 1 : 0;
  w.done[i] = 1;
  ++w.finished;
  w.cv.notify_all();
}

constexpr std::size_t kLsWorkers = 8;

}  // namespace

LsListing gather_ls(std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  auto w = std::make_shared<LsWork>();
  w->names = Segment::list();
  std::sort(w->names.begin(), w->names.end());
  const std::size_t count = w->names.size();
  w->entries.resize(count);
  w->done.assign(count, 0);
  w->removed.assign(count, 0);
  std::vector<std::thread> workers;
  for (std::size_t k = 0; k < std::min(count, kLsWorkers); ++k) {
    workers.emplace_back([w] {
      for (std::size_t i; (i = w->next.fetch_add(1)) < w->names.size();) open_one(*w, i);
    });
  }
  LsListing out;
  std::unique_lock lock(w->m);
  const bool all = w->cv.wait_until(lock, end, [&] { return w->finished == count; });
  // An open still running may never end (a file locked by a stopped
  // process): leave its thread behind rather than wait.
  for (auto& t : workers) {
    if (all) {
      t.join();  // each is past its last open: quick
    } else {
      t.detach();
    }
  }
  const auto secs =
      static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count()) / 1000.0;
  char waited[32];
  std::snprintf(waited, sizeof waited, "%.1f", secs);
  for (std::size_t i = 0; i < count; ++i) {
    if (!w->done[i]) {
      out.complete = false;
      out.entries.push_back(LsEntry{w->names[i], std::nullopt,
                                    "segment '" + w->names[i] + "' could not be opened within " + waited +
                                        " s (its creator, or whoever holds a lock on its file, may be stopped); "
                                        "try `ipckit inspect " +
                                        w->names[i] + "`",
                                    0});
    } else if (!w->removed[i]) {
      out.entries.push_back(w->entries[i]);
    }
  }
  // Workers not yet started must not open anything more.
  w->next.store(count);
  return out;
}

void render_ls(std::ostream& out, const std::vector<LsEntry>& entries, bool json) {
  if (json) {
    Json segments = Json::array();
    for (const auto& e : entries) {
      Json s = Json::object();
      if (e.info) {
        add_segment_json(s, *e.info);
        s["processes"] = e.processes;
      } else {
        s["name"] = e.name;
        s["error"] = e.error;
      }
      segments.push_back(std::move(s));
    }
    out << dump(Json{{"segments", std::move(segments)}});
    return;
  }
  if (entries.empty()) {
    out << "no ipckit segments\n";
    return;
  }
  Table t({"NAME", "SIZE", "USED", "OBJECTS", "PROCESSES", "CREATOR", "AGE", "MODE"});
  for (const auto& e : entries) {
    if (!e.info) {
      t.add({escape_text(e.name), "error: " + escape_text(e.error)});
      continue;
    }
    const auto& i = *e.info;
    t.add({escape_text(i.name), human_bytes(i.size), human_bytes(i.used), std::to_string(i.objects),
           std::to_string(e.processes), creator_text(i), age_text(i), octal_mode(i.mode)});
  }
  t.print(out);
}

}  // namespace ipckit::cli
