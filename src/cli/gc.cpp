// `ipckit gc` (gc.hpp).
#include "gc.hpp"

#include <algorithm>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include "ipckit/error.hpp"
#include "ipckit/process_table.hpp"
#include "ipckit/segment.hpp"
#include "json.hpp"
#include "proc_maps.hpp"
#include "shm_file.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

struct Candidate {
  GcDecision d;
  bool leased = false;  // a participating handle has it open (shm_file.hpp: the lease)
  FileId id{};
  bool have_id = false;
  std::string unreadable;  // why its header could not be read
};

std::string pid_list(const std::vector<int>& pids) {
  std::string out;
  for (std::size_t i = 0; i < pids.size() && i < 8; ++i) out += (i ? ", " : "") + std::to_string(pids[i]);
  if (pids.size() > 8) out += ", ...";
  return out;
}

// The live processes listed in a segment's table (pid and start time: a
// recycled pid does not count).
std::vector<int> attached_to(const Segment& seg) {
  std::vector<int> out;
  for (const auto& p : seg.processes())
    if (p.alive) out.push_back(p.pid);
  return out;
}

// The same by name, for the look just before removing (none when it cannot be opened).
std::vector<int> attached_to(const std::string& name) {
  try {
    OpenOptions look;  // look-only: this process is not listed
    look.any_owner = true;
    return attached_to(Segment::open(name, look));
  } catch (const Error&) {
    return {};
  }
}

Candidate look_at(const std::string& name, std::int64_t now) {
  Candidate c;
  c.d.name = name;
  std::int64_t linked = 0;
  c.have_id = file_id_of(detail::shm_path(name), c.id, &linked);
  std::int64_t created = linked;
  try {
    OpenOptions look;
    look.any_owner = true;
    const Segment seg = Segment::open(name, look);  // unmapped again before the scan
    const SegmentInfo info = seg.info();
    c.d.attached = attached_to(seg);
    c.d.creator_pid = info.creator_pid;
    c.d.creator_alive = info.creator_alive;
    created = std::max(created, info.created_unix);
  } catch (const NotFound&) {
    c.have_id = false;
  } catch (const Error& e) {
    c.unreadable = e.what();
  }
  c.leased = detail::lease_held(name);
  // The younger of the header's birth and the name's link: either may be the recent one.
  if (c.have_id) c.d.age_seconds = now - created;
  return c;
}

// Why `c` must stay, or "" if it may go.
std::string keep_reason(const Candidate& c, std::int64_t grace) {
  if (!c.d.attached.empty()) return "in use: pid " + pid_list(c.d.attached) + " attached (its process table)";
  if (c.leased) return "in use: a process has it open (it holds the segment's lease)";
  if (!c.d.mapped_by.empty()) return "in use: mapped by pid " + pid_list(c.d.mapped_by);
  if (c.d.creator_alive) return "in use: its creator, pid " + std::to_string(c.d.creator_pid) + ", is alive";
  if (c.d.age_seconds < grace)
    return "too young: " + std::to_string(std::max<std::int64_t>(c.d.age_seconds, 0)) + " s old, grace " +
           std::to_string(grace) + " s";
  return "";
}

void decide(Candidate& c, const MapUsers& maps, std::int64_t grace, bool dry_run) {
  GcDecision& d = c.d;
  if (auto it = maps.users.find(c.id); c.have_id && it != maps.users.end())
    d.mapped_by.assign(it->second.begin(), it->second.end());
  d.reason = keep_reason(c, grace);
  if (!d.reason.empty()) {
    d.action = "keep";
    return;
  }
  d.reason = c.unreadable.empty() ? "unused: its creator, pid " + std::to_string(d.creator_pid) +
                                        ", is gone, no live process is in its table, none has it open"
                                  : "unused and unreadable (" + c.unreadable + "); no process has it open";
  if (dry_run) {
    d.action = "remove";
    return;
  }
  // Looked at again just before: the name may now be another segment's (removed and made
  // again since), or a process may have mapped it since the scan.
  FileId now{};
  if (!file_id_of(detail::shm_path(d.name), now) || now != c.id) {
    d.action = "keep";
    d.reason = "changed while gc looked: another segment is under its name now";
    return;
  }
  if (auto listed = attached_to(d.name); !listed.empty()) {
    d.action = "keep";
    d.attached = std::move(listed);
    d.reason = "in use: pid " + pid_list(d.attached) + " attached since gc looked";
    return;
  }
  if (const MapUsers again = scan_maps({c.id}); !again.users.empty()) {
    d.action = "keep";
    d.mapped_by.assign(again.users.begin()->second.begin(), again.users.begin()->second.end());
    d.reason = "in use: mapped by pid " + pid_list(d.mapped_by) + " since gc looked";
    return;
  }
  // The decision that counts: taken under an exclusive lock, so that no
  // handle can open it between "unused" and the removal.
  try {
    switch (detail::remove_if_unused(d.name, c.id.first, c.id.second)) {
      case detail::RemoveIfUnused::Removed:
        d.action = "removed";
        break;
      case detail::RemoveIfUnused::InUse:
        d.action = "keep";
        d.reason = "in use: a process opened it since gc looked";
        break;
      case detail::RemoveIfUnused::Changed:
        d.action = "keep";
        d.reason = "changed while gc looked: removed, or another segment is under its name now";
        break;
    }
  } catch (const Error& e) {
    d.action = "failed";
    d.reason = e.what();
  }
}

struct GcArgs {
  bool dry_run = false;
  bool json = false;
  std::int64_t grace = 60;
};

void print_json(const GcArgs& a, const std::vector<GcDecision>& ds) {
  Json segments = Json::array();
  for (const auto& d : ds) {
    segments.push_back(Json{{"name", d.name},
                            {"action", d.action},
                            {"reason", d.reason},
                            {"creator_pid", d.creator_pid},
                            {"creator_alive", d.creator_alive},
                            {"age_seconds", d.age_seconds >= 0 ? Json(d.age_seconds) : Json(nullptr)},
                            {"mapped_by", d.mapped_by},
                            {"attached", d.attached}});
  }
  std::cout << dump(Json{{"dry_run", a.dry_run}, {"grace_seconds", a.grace}, {"segments", std::move(segments)}});
}

void print_text(const std::vector<GcDecision>& ds) {
  if (ds.empty()) {
    std::cout << "no ipckit segments\n";
    return;
  }
  Table t({"ACTION", "NAME", "AGE", "REASON"});
  for (const auto& d : ds)
    t.add({d.action, escape_text(d.name), d.age_seconds >= 0 ? human_age(d.age_seconds) : "?", escape_text(d.reason)});
  t.print(std::cout);
}

int run_gc(const GcArgs& a) {
  if (a.grace < 0) throw InvalidArgument("gc", "gc: a negative --grace; use 0 or more seconds");
  const auto ds = collect_garbage(a.grace, a.dry_run);
  if (a.json) {
    print_json(a, ds);
  } else {
    print_text(ds);
  }
  const bool failed = std::any_of(ds.begin(), ds.end(), [](const auto& d) { return d.action == "failed"; });
  return failed ? kExitError : kExitOk;
}

}  // namespace

std::vector<GcDecision> collect_garbage(std::int64_t grace_seconds, bool dry_run) {
  auto names = Segment::list();
  std::sort(names.begin(), names.end());
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::vector<Candidate> cands;
  std::set<FileId> wanted;
  for (const auto& n : names) {
    Candidate c = look_at(n, now);
    if (!c.have_id) continue;  // removed meanwhile
    wanted.insert(c.id);
    cands.push_back(std::move(c));
  }
  // Scanned after the looks, so that a process that maps one meanwhile is seen.
  const MapUsers maps = scan_maps(wanted);
  std::vector<GcDecision> out;
  for (auto& c : cands) {
    decide(c, maps, grace_seconds, dry_run);
    out.push_back(std::move(c.d));
  }
  return out;
}

Command add_gc(CLI::App& app) {
  auto args = std::make_shared<GcArgs>();
  auto* gc = app.add_subcommand(
      "gc",
      "Remove segments no process uses (creator gone, no live process in their table, nobody has them open) older "
      "than a grace period");
  gc->add_flag("-n,--dry-run", args->dry_run, "Only say what would be removed");
  gc->add_option("--grace", args->grace, "Spare segments younger than this many seconds (default 60)");
  gc->add_flag("--json", args->json, "Print the decisions as JSON");
  return {gc, [args] { return run_gc(*args); }};
}

}  // namespace ipckit::cli
