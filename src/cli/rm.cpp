// `ipckit rm` (rm.hpp). Each name is removed on its own: one that is
// missing or refused does not stop the others, and the exit status is 1 if
// any failed.
#include "rm.hpp"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"
#include "json.hpp"
#include "text.hpp"

namespace ipckit::cli {
namespace {

struct RmArgs {
  std::vector<std::string> names;
  bool force = false;
  bool json = false;
};

// "removed", "missing" or "error", and the error's message.
std::pair<std::string, std::string> remove_one(const std::string& name) {
  try {
    return {Segment::remove(name) ? "removed" : "missing", ""};
  } catch (const Error& e) {
    return {"error", e.what()};
  }
}

int run_rm(const RmArgs& a) {
  int status = kExitOk;
  Json results = Json::array();
  for (const auto& name : a.names) {
    auto [result, message] = remove_one(name);
    if (result == "missing" && !a.force) {
      message = "no segment named '" + name + "' to remove (see `ipckit ls`)";
    }
    if (!message.empty()) status = kExitError;
    if (!message.empty() && !a.json) std::cerr << "ipckit: " << escape_text(message) << "\n";
    Json r{{"name", name}, {"result", result}};
    if (!message.empty()) r["error"] = message;
    results.push_back(std::move(r));
  }
  if (a.json) std::cout << dump(Json{{"removed", std::move(results)}});
  return status;
}

}  // namespace

Command add_rm(CLI::App& app) {
  auto args = std::make_shared<RmArgs>();
  auto* rm = app.add_subcommand(
      "rm", "Remove segments by name (processes that have one mapped keep using it until they exit)");
  rm->add_option("segment", args->names, "Segment names")->required();
  rm->add_flag("-f,--force", args->force, "Do not complain about segments that do not exist");
  rm->add_flag("--json", args->json, "Print each name's result as JSON: {\"removed\": [{name, result, error?}]}");
  return {rm, [args] { return run_rm(*args); }};
}

}  // namespace ipckit::cli
