// `ipckit doctor` (doctor.hpp).
#include "doctor.hpp"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <memory>
#include <variant>

#include "gc.hpp"
#include "ipckit/error.hpp"
#include "ipckit/inspect.hpp"
#include "ipckit/process_table.hpp"
#include "json.hpp"
#include "kinds.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

struct DoctorArgs {
  std::optional<std::string> segment;
  bool json = false;
  std::int64_t grace = 60;
};

// The locks of one object's snapshot, with what each is called in a message.
std::vector<std::pair<std::string, LockStats>> locks_of(const ObjectSnapshot& snap) {
  std::vector<std::pair<std::string, LockStats>> out;
  if (auto own = kind_view(snap.info.kind).lock(snap)) out.emplace_back("its lock", *own);
  if (const auto* q = std::get_if<QueueStats>(&snap.stats)) {
    out.emplace_back("its producers' lock", q->producers_lock);
    out.emplace_back("its consumers' lock", q->consumers_lock);
  }
  return out;
}

std::string holder(const LockStats& lock) {
  if (lock.holder_pid == 0) return "thread " + std::to_string(lock.holder_tid) + " (its process is gone)";
  return "pid " + std::to_string(lock.holder_pid) + " (thread " + std::to_string(lock.holder_tid) + ")";
}

const TaskStats* tasks_of(const ObjectSnapshot& snap) {
  if (const auto* q = std::get_if<QueueStats>(&snap.stats); q && q->tasks) return &*q->tasks;
  if (const auto* p = std::get_if<PriorityQueueStats>(&snap.stats); p && p->tasks) return &*p->tasks;
  return nullptr;
}

void check_object(const Segment& seg, const ObjectInfo& o, std::vector<Finding>& out) {
  ObjectSnapshot snap;
  try {
    snap = seg.inspect(o.name, 0);
  } catch (const Error& e) {
    out.push_back({seg.name(),
                   o.name,
                   "unreadable",
                   e.what(),
                   "`ipckit inspect " + seg.name() +
                       "` shows it; "
                       "recreate the segment if it is corrupt",
                   {}});
    return;
  }
  const std::string what = kind_name(o.kind) + " '" + o.name + "'";
  for (const auto& [which, lock] : locks_of(snap)) {
    if (!lock.locked || lock.holder_alive) continue;
    std::string problem = what;
    problem += ": " + which + " is held by " + holder(lock) + ", which is dead";
    out.push_back({seg.name(), o.name, "dead_lock_holder", problem,
                   "its next acquirer takes it over (owner_died); check the data it guarded, or restart the "
                   "programs using it",
                   lock.holder_pid != 0 ? std::vector<int>{lock.holder_pid} : std::vector<int>{}});
  }
  if (const TaskStats* t = tasks_of(snap); t && t->abandoned > 0) {
    out.push_back({seg.name(),
                   o.name,
                   "abandoned_tasks",
                   what + ": " + std::to_string(t->abandoned) +
                       " item(s) taken by processes that died before "
                       "task_done()",
                   "join() already counts them as done; put the work back if it must still be done",
                   {}});
  }
}

std::string pids_text(const std::vector<int>& pids) {
  std::string out;
  for (std::size_t i = 0; i < pids.size(); ++i) out += (i == 0 ? "" : ", ") + std::to_string(pids[i]);
  return out;
}

// Cycles of lock waits, and slots of dead processes. Both read the table
// without locking, so a stopped or dead member cannot make doctor wait.
void check_processes(const Segment& seg, const SegmentInfo& info, std::vector<Finding>& out) {
  for (const Deadlock& d : seg.deadlocks()) {
    std::vector<int> pids;
    for (const auto& m : d.members)
      if (std::find(pids.begin(), pids.end(), m.pid) == pids.end()) pids.push_back(m.pid);
    const std::string order = "take the locks in one global order";
    std::string fix =
        "kill one of pids " + pids_text(pids) + " (or " +
        (info.deadlock_detection ? order + ")" : "enable SegmentOptions::deadlock_detection and " + order + ")");
    out.push_back({seg.name(), std::nullopt, "deadlock", "deadlock: " + d.describe(), std::move(fix), pids, d.members});
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (const AttachedProcess& p : seg.processes()) {
    // A Terminated one ran to its end (an ipckit::Process child exits
    // without closing what it inherited): nothing went wrong there.
    if (p.alive || p.state == ProcessState::Terminated) continue;
    std::string problem = "process table slot " + std::to_string(p.slot) + ": pid " + std::to_string(p.pid);
    if (!p.name.empty()) problem += " (" + p.name + ")";
    problem += " died while attached (last state " + std::string(to_string(p.state)) + ")";
    problem += ", attached " + human_age(now - p.attached_unix) + " ago";
    out.push_back({seg.name(),
                   std::nullopt,
                   "stale_slot",
                   std::move(problem),
                   "harmless: reclaimed by the next process that attaches; `ipckit gc` removes the segment if "
                   "nothing else uses it",
                   {p.pid}});
  }
}

void check_segment(const std::string& name, std::vector<Finding>& out) {
  OpenOptions look;
  look.any_owner = true;
  Segment seg = [&] {
    try {
      return Segment::open(name, look);
    } catch (const NotFound&) {
      throw;
    } catch (const Error& e) {
      out.push_back({name, std::nullopt, "unreadable", e.what(), "`ipckit rm " + name + "` if nobody needs it"});
      throw NotFound(name, "");
    }
  }();
  const SegmentInfo info = seg.info();
  if ((info.mode & 0006) != 0)
    out.push_back({name,
                   std::nullopt,
                   "world_accessible",
                   "mode " + octal_mode(info.mode) + ": any local user may read or write it",
                   "create it with SegmentOptions::mode 0600 (or 0660 for a group), or "
                   "`chmod o-rw` its file",
                   {}});
  for (const auto& o : seg.objects()) check_object(seg, o, out);
  check_processes(seg, info, out);
}

int run_doctor(const DoctorArgs& a) {
  std::vector<std::string> names;
  if (a.segment) {
    names.push_back(*a.segment);
    OpenOptions look;
    look.any_owner = true;
    (void)Segment::open(*a.segment, look);  // a missing one is the command's error
  } else {
    names = Segment::list();
    std::sort(names.begin(), names.end());
  }
  std::vector<Finding> findings;
  for (const auto& n : names) {
    try {
      check_segment(n, findings);
    } catch (const NotFound&) {
      // removed meanwhile, or reported unreadable
    }
  }
  for (const auto& d : collect_garbage(a.grace, true)) {
    if (d.action != "remove" || (a.segment && d.name != *a.segment)) continue;
    findings.push_back({d.name,
                        std::nullopt,
                        "unused_segment",
                        d.reason,
                        "`ipckit gc` removes it, or `ipckit rm " + d.name + "`",
                        {}});
  }
  if (a.json) {
    Json list = Json::array();
    for (const auto& f : findings) {
      Json j{{"segment", f.segment}, {"object", f.object ? Json(*f.object) : Json(nullptr)},
             {"check", f.check},     {"problem", f.problem},
             {"fix", f.fix},         {"pids", f.pids}};
      if (f.check == "deadlock") {
        Json cycle = Json::array();
        for (const auto& m : f.cycle)
          cycle.push_back(
              Json{{"pid", m.pid}, {"tid", m.tid}, {"name", m.name}, {"holds", m.holds}, {"waits_for", m.waits_for}});
        j["cycle"] = std::move(cycle);
      }
      list.push_back(std::move(j));
    }
    std::cout << dump(Json{{"findings", std::move(list)}, {"segments_checked", names.size()}});
  } else if (findings.empty()) {
    std::cout << "no problems found in " << names.size() << " segment(s)\n";
  } else {
    for (const auto& f : findings)
      std::cout << escape_text(f.segment) << ": " << escape_text(f.problem) << "\n  fix: " << escape_text(f.fix)
                << "\n";
  }
  return findings.empty() ? kExitOk : kExitFindings;
}

}  // namespace

Command add_doctor(CLI::App& app) {
  auto a = std::make_shared<DoctorArgs>();
  auto* d = app.add_subcommand("doctor",
                               "Find what is wrong (dead lock holders, deadlock cycles, abandoned tasks, stale "
                               "process table slots, unused or world-accessible segments), with a fix for each "
                               "(exit status 5)");
  d->add_option("segment", a->segment, "Only this segment (default: all)");
  d->add_option("--grace", a->grace, "Segments younger than this many seconds are never called unused (default 60)")
      ->check(CLI::NonNegativeNumber);
  d->add_flag("--json", a->json, "Print the findings as JSON");
  d->footer(
      "Checks (the \"check\" field of --json): dead_lock_holder, deadlock (a cycle of lock waits), "
      "abandoned_tasks, stale_slot (a dead process's table slot), world_accessible, unused_segment, unreadable.");
  return {d, [a] { return run_doctor(*a); }};
}

}  // namespace ipckit::cli
