// ipckit — look at ipckit's shared-memory segments from the shell, like `ipcs`.
//
//   ipckit ls [--json]                  every segment: size, use, objects, creator, age
//   ipckit inspect SEG [OBJ] [--json]   its objects: kind, type, values, lock holders
//   ipckit rm SEG...                    deletes segments by name
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
// Exit status: 0 on success, 1 when ipckit reports an error (printed as
// "ipckit: <message>" on stderr), 2 for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "inspect.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"
#include "ls.hpp"
#include "ps.hpp"
#include "text.hpp"

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

int cmd_rm(const std::vector<std::string>& names, bool force) {
  int status = 0;
  for (const auto& name : names) {
    try {
      if (!ipckit::Segment::remove(name) && !force) {
        std::cerr << "ipckit: no segment named '" << escape_text(name) << "' to remove (see `ipckit ls`)\n";
        status = 1;
      }
    } catch (const ipckit::Error& e) {
      std::cerr << "ipckit: " << escape_text(e.what()) << "\n";
      status = 1;
    }
  }
  return status;
}

}  // namespace

// What escapes the commands' handlers (out of memory) ends the program, as it should.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  CLI::App app{"ipckit: inspect and manage ipckit shared-memory segments", "ipckit"};
  app.require_subcommand(1);

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

  std::vector<std::string> rm_names;
  bool rm_force = false;
  auto* rm = app.add_subcommand(
      "rm", "Remove segments by name (processes that have one mapped keep using it until they exit)");
  rm->add_option("segment", rm_names, "Segment names")->required();
  rm->add_flag("-f,--force", rm_force, "Do not complain about segments that do not exist");

  std::string ps_seg;
  bool ps_json = false;
  auto* ps = app.add_subcommand("ps", "Show the processes attached to a segment (or all): state, blocked on, holds");
  auto* ps_seg_opt = ps->add_option("segment", ps_seg, "Segment name (default: every segment)");
  ps->add_flag("--json", ps_json, "Print JSON instead of a table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  try {
    if (*ls) return cmd_ls(ls_json);
    if (*inspect) {
      return cmd_inspect(inspect_seg, obj_opt->count() ? std::optional(inspect_obj) : std::nullopt, inspect_json,
                         limit_opt->count() ? std::optional(inspect_limit) : std::nullopt);
    }
    if (*rm) return cmd_rm(rm_names, rm_force);
    if (*ps)
      return ipckit::cli::run_ps(std::cout, std::cerr, ps_seg_opt->count() ? std::optional(ps_seg) : std::nullopt, ps_json);
  } catch (const ipckit::Error& e) {
    std::cerr << "ipckit: " << escape_text(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ipckit: unexpected error: " << escape_text(e.what()) << "\n";
    return 1;
  }
  return 2;
}
