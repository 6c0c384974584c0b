// ipckit — look at ipckit's shared-memory segments from the shell, like `ipcs`.
//
//   ipckit ls [--json]                  every segment: size, use, objects, creator, age
//   ipckit inspect SEG [OBJ] [--json]   its objects: kind, type, values, lock holders
//   ipckit ps [SEG] [--json]            its process table: state, blocked on, holds (ps.hpp)
//   ipckit rm SEG... [-f] [--json]      deletes segments by name
//   ipckit gc [--dry-run] [--grace S]   removes segments nobody uses (gc.hpp)
//   ipckit put SEG QUEUE TEXT           string and byte queues from scripts (queue_io.hpp)
//   ipckit get SEG QUEUE [--count N]
//   ipckit watch SEG [OBJ]              a live view (watch.hpp)
//   ipckit bench [SECTION...]           runs scripts/bench.sh (bench.hpp)
//   ipckit doctor [SEG]                 what is wrong, with a fix for each (doctor.hpp)
//   ipckit ls/inspect/ps/rm --redis URL, ipckit dead --redis URL NAME
//                                       queues on a Redis server (redis_cli.hpp)
//
// The CLI only observes: it never takes an object's lock, so it cannot block
// or disturb the processes it looks at. Values are read as a snapshot (single
// atomic loads for scalars), which is what a lock-free observer can promise.
// What it prints comes from the library (Segment::info(), Segment::inspect())
// and is rendered by ipckit_cli_lib: ls.hpp and inspect.hpp put it together,
// tables.hpp and json.hpp write each snapshot, kinds.hpp says which for each
// kind of object. Names and messages are escaped for the terminal, JSON is
// always valid UTF-8.
//
// Exit status: see command.hpp (kExitHelp, also printed by `ipckit --help`).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench.hpp"
#include "command.hpp"
#include "doctor.hpp"
#include "gc.hpp"
#include "inspect.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"
#include "ls.hpp"
#include "ps.hpp"
#include "queue_io.hpp"
#include "redis_cli.hpp"
#include "rm.hpp"
#include "text.hpp"
#include "watch.hpp"

namespace {

using ipckit::cli::escape_text;

int cmd_ls(bool json) {
  auto listing = ipckit::cli::gather_ls();
  ipckit::cli::render_ls(std::cout, listing.entries, json);
  if (!listing.complete) {
    // A thread is still stuck opening a segment: leave without waiting for it
    // (and without running destructors under its feet).
    std::cout.flush();
    std::_Exit(0);
  }
  return 0;
}

int cmd_inspect(const std::string& seg_name, const std::optional<std::string>& obj_name, bool json,
                std::optional<std::size_t> limit) {
  // Inspecting only reads, so a segment of another owner or mode is shown too.
  ipckit::OpenOptions look;
  look.any_owner = true;
  const auto seg = ipckit::Segment::open(seg_name, look);
  ipckit::cli::InspectOptions options;
  options.object = obj_name;
  options.limit = limit;
  options.json = json;
  ipckit::cli::render_inspect(std::cout, seg, options);
  return 0;
}

}  // namespace

// What escapes the commands' handlers (out of memory) ends the program, as it should.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  CLI::App app{"ipckit: inspect and manage ipckit shared-memory segments", "ipckit"};
  app.require_subcommand(1);
  app.footer(ipckit::cli::kExitHelp);

  bool ls_json = false;
  auto* ls = app.add_subcommand("ls", "List every ipckit segment: size, use, objects, creator, age");
  ls->add_flag("--json", ls_json, "Print JSON instead of a table");

  std::string inspect_seg;
  std::string inspect_obj;
  bool inspect_json = false;
  std::size_t inspect_limit = 0;
  auto* inspect = app.add_subcommand("inspect", "Show a segment's objects: kind, type, values and lock holders");
  inspect->add_option("segment", inspect_seg, "Segment name")->required();
  auto* obj_opt = inspect->add_option("object", inspect_obj, "Only this object (shows all of its elements)");
  inspect->add_flag("--json", inspect_json, "Print JSON instead of a table");
  auto* limit_opt = inspect->add_option("--limit", inspect_limit,
                                        "Array elements to show (0: all; default 8, or all for a single object)");

  std::vector<ipckit::cli::Command> commands;
  for (auto add : {ipckit::cli::add_ps, ipckit::cli::add_rm, ipckit::cli::add_gc, ipckit::cli::add_put,
                   ipckit::cli::add_get, ipckit::cli::add_watch, ipckit::cli::add_bench, ipckit::cli::add_doctor})
    commands.push_back(add(app));
  const auto redis = ipckit::cli::add_redis(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? ipckit::cli::kExitOk : ipckit::cli::kExitUsage;
  }

  try {
    for (const auto& c : redis)
      if (*c.app && c.url->count() != 0) return c.run();
    if (*ls) return cmd_ls(ls_json);
    if (*inspect) {
      return cmd_inspect(inspect_seg, obj_opt->count() ? std::optional(inspect_obj) : std::nullopt, inspect_json,
                         limit_opt->count() ? std::optional(inspect_limit) : std::nullopt);
    }
    for (const auto& c : commands)
      if (*c.app) return c.run();
  } catch (const ipckit::Error& e) {
    std::cerr << "ipckit: " << escape_text(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ipckit: unexpected error: " << escape_text(e.what()) << "\n";
    return 1;
  }
  return 2;
}
