// A named pool's state, for people and as JSON (pool_view.hpp).
#include "pool_view.hpp"

#include <cstdio>
#include <sstream>

#include "text.hpp"

namespace ipckit::cli {
namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

std::string seconds_text(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", seconds(d));
  return buf;
}

}  // namespace

Json pool_json(const PoolSnapshot& p) {
  const PoolStats& s = p.stats;
  Json workers = Json::array();
  for (const auto& w : s.per_worker)
    workers.push_back(Json{{"index", w.index},
                           {"pid", w.pid},
                           {"task", w.task != 0 ? Json(w.task) : Json(nullptr)},
                           {"running_seconds", w.task != 0 ? Json(seconds(w.running_for)) : Json(nullptr)},
                           {"tasks_done", w.tasks_done}});
  Json j{{"max_pending", p.max_pending}, {"max_message", p.max_message},     {"max_clients", p.max_clients},
         {"max_workers", p.max_workers}, {"workers_alive", s.workers_alive}, {"clients_alive", p.clients_alive},
         {"restarts", s.restarts},       {"submitted", s.submitted},         {"pending", s.pending},
         {"running", s.running},         {"succeeded", s.succeeded},         {"failed", s.failed},
         {"timed_out", s.timed_out},     {"cancelled", s.cancelled},         {"workers", std::move(workers)}};
  if (!p.corrupt.empty()) j["corrupt"] = p.corrupt;
  return j;
}

std::string pool_text(const PoolSnapshot& p) {
  const PoolStats& s = p.stats;
  std::ostringstream out;
  out << "\npool: " << s.workers_alive << "/" << p.max_workers << " workers alive, " << p.clients_alive << "/"
      << p.max_clients << " clients, " << s.restarts << " restarts\n"
      << "tasks: " << s.pending << " pending, " << s.running << " running, " << s.succeeded << " done, " << s.failed
      << " failed, " << s.timed_out << " timed out, " << s.cancelled << " cancelled (" << s.submitted
      << " submitted)\n";
  if (!p.corrupt.empty()) out << "corrupt: " << escape_text(p.corrupt) << "\n";
  if (s.per_worker.empty()) return out.str();
  Table t({"WORKER", "PID", "TASK", "RUNNING FOR", "TASKS DONE"});
  for (const auto& w : s.per_worker)
    t.add({std::to_string(w.index), std::to_string(w.pid), w.task != 0 ? std::to_string(w.task) : "idle",
           w.task != 0 ? seconds_text(w.running_for) : "-", std::to_string(w.tasks_done)});
  t.print(out);
  return out.str();
}

}  // namespace ipckit::cli
