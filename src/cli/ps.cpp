// `ipckit ps`: renders Segment::processes() as a table or as JSON.
//
// JSON (stable field names): {"segments": [{"segment": NAME, "processes": [
//   {"pid", "start_ticks", "name", "state", "alive", "attached_unix",
//    "blocked_on": [{"tid", "operation", "object", "kind", "offset", "seconds"}],
//    "holds": [{"object", "kind", "part", "tid"}],  part: "" or e.g. "producers' side"
//    "history": [{"state", "unix_us"}]}]}], or "error" instead of "processes"}.
#include "ps.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>
#include <memory>
#include <ostream>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/process_table.hpp"
#include "ipckit/segment.hpp"
#include "json.hpp"
#include "kinds.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

struct SegmentProcesses {
  std::string segment;
  std::vector<AttachedProcess> processes;
  std::string error;
};

SegmentProcesses gather(const std::string& name) {
  SegmentProcesses s{name, {}, {}};
  try {
    OpenOptions look;  // only looks: any owner's segment, and this process is not listed
    look.any_owner = true;
    s.processes = Segment::open(name, look).processes();
  } catch (const Error& e) {
    s.error = e.what();
  }
  return s;
}

std::string state_text(const AttachedProcess& p) {
  std::string s = to_string(p.state);
  return p.alive ? s : "dead (" + s + ")";
}

std::string blocked_text(const AttachedProcess& p) {
  std::string out;
  for (const auto& w : p.waits) {
    if (!out.empty()) out += "; ";
    const std::string object =
        w.object.empty() ? std::string("segment internals") : kind_name(w.kind) + " " + quote_text(w.object, '\'');
    // "lock 'A'" rather than "lock on lock 'A'".
    out += object.starts_with(w.operation + " ") ? object : w.operation + " on " + object;
    out += " (" + human_age(static_cast<std::int64_t>(w.seconds)) + ")";
  }
  return out.empty() ? "-" : out;
}

std::string holds_text(const AttachedProcess& p) {
  std::string out;
  for (const auto& h : p.holds)
    out += (out.empty() ? "" : ", ") + kind_name(h.kind) + " " + quote_text(h.object, '\'') +
           (h.part.empty() ? "" : " (" + h.part + ")");
  return out.empty() ? "-" : out;
}

void render_text(std::ostream& out, const std::vector<SegmentProcesses>& all, bool with_segment) {
  std::vector<std::string> header{"PID", "NAME", "STATE", "BLOCKED ON", "HOLDS", "ATTACHED"};
  if (with_segment) header.insert(header.begin(), "SEGMENT");
  Table table(header);
  const std::int64_t now = std::time(nullptr);
  for (const auto& s : all) {
    if (!s.error.empty()) {
      std::vector<std::string> row{escape_text(s.segment), escape_text(s.error)};
      if (!with_segment) row.erase(row.begin());
      table.add(row);
      continue;
    }
    for (const auto& p : s.processes) {
      std::vector<std::string> row{std::to_string(p.pid), escape_text(p.name),
                                   state_text(p),         blocked_text(p),
                                   holds_text(p),         human_age(now - p.attached_unix) + " ago"};
      if (with_segment) row.insert(row.begin(), escape_text(s.segment));
      table.add(row);
    }
  }
  table.print(out);
}

Json process_json(const AttachedProcess& p) {
  Json j;
  j["pid"] = p.pid;
  j["start_ticks"] = p.start_ticks;
  j["name"] = p.name;
  j["state"] = to_string(p.state);
  j["alive"] = p.alive;
  j["attached_unix"] = p.attached_unix;
  Json waits = Json::array();
  for (const auto& w : p.waits)
    waits.push_back({{"tid", w.tid},
                     {"operation", w.operation},
                     {"object", w.object},
                     {"kind", w.object.empty() ? "" : kind_name(w.kind)},
                     {"offset", w.offset},
                     {"seconds", w.seconds}});
  j["blocked_on"] = waits;
  Json holds = Json::array();
  for (const auto& h : p.holds)
    holds.push_back({{"object", h.object}, {"kind", kind_name(h.kind)}, {"part", h.part}, {"tid", h.tid}});
  j["holds"] = holds;
  Json history = Json::array();
  for (const auto& c : p.history) history.push_back({{"state", to_string(c.state)}, {"unix_us", c.unix_us}});
  j["history"] = history;
  return j;
}

void render_json(std::ostream& out, const std::vector<SegmentProcesses>& all) {
  Json segments = Json::array();
  for (const auto& s : all) {
    Json j;
    j["segment"] = s.segment;
    if (!s.error.empty()) {
      j["error"] = s.error;
    } else {
      j["processes"] = processes_json(s.processes);
    }
    segments.push_back(j);
  }
  Json root;
  root["segments"] = segments;
  out << dump(root);
}

}  // namespace

void print_processes(std::ostream& out, const std::vector<AttachedProcess>& processes) {
  render_text(out, {SegmentProcesses{"", processes, {}}}, false);
}

Json processes_json(const std::vector<AttachedProcess>& processes) {
  Json procs = Json::array();
  for (const auto& p : processes) procs.push_back(process_json(p));
  return procs;
}

int run_ps(std::ostream& out, std::ostream& err, const std::optional<std::string>& segment, bool json) {
  std::vector<SegmentProcesses> all;
  if (segment) {
    all.push_back(gather(*segment));
    if (!all.back().error.empty()) {
      err << "ipckit: " << escape_text(all.back().error) << "\n";
      return 1;
    }
  } else {
    auto names = Segment::list();
    std::sort(names.begin(), names.end());
    for (const auto& name : names) all.push_back(gather(name));
  }
  if (json)
    render_json(out, all);
  else
    render_text(out, all, !segment);
  return 0;
}

Command add_ps(CLI::App& app) {
  struct Args {
    std::string segment;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* ps = app.add_subcommand("ps", "Show the processes attached to a segment (or all): state, blocked on, holds");
  auto* seg = ps->add_option("segment", args->segment, "Segment name (default: every segment)");
  ps->add_flag("--json", args->json, "Print JSON instead of a table");
  return {ps, [args, seg] {
            return run_ps(std::cout, std::cerr, seg->count() != 0 ? std::optional(args->segment) : std::nullopt,
                          args->json);
          }};
}

}  // namespace ipckit::cli
