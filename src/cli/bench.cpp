// `ipckit bench` (bench.hpp).
#include "bench.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "ipckit/error.hpp"

namespace ipckit::cli {
namespace {

namespace fs = std::filesystem;

struct BenchArgs {
  std::string script;
};

std::vector<fs::path> candidates(const BenchArgs& a) {
  if (!a.script.empty()) return {a.script};
  std::vector<fs::path> out;
  if (const char* env = std::getenv("IPCKIT_BENCH_SCRIPT"); env != nullptr && *env != '\0') return {env};
#ifdef IPCKIT_SOURCE_DIR
  out.emplace_back(fs::path(IPCKIT_SOURCE_DIR) / "scripts" / "bench.sh");
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back(exe.parent_path().parent_path() / "scripts" / "bench.sh");
  return out;
}

int run_bench(const BenchArgs& a, const std::vector<std::string>& pass) {
  const auto paths = candidates(a);
  std::string tried;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) {
      tried += (tried.empty() ? "" : ", ") + p.string();
      continue;
    }
    std::vector<std::string> words{"bash", p.string()};
    words.insert(words.end(), pass.begin(), pass.end());
    std::vector<char*> argv;
    argv.reserve(words.size() + 1);
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    ::execvp("bash", argv.data());
    throw SystemError("bench", "bench: cannot run bash " + p.string() + ": " + std::strerror(errno));
  }
  throw NotFound("bench", "bench: scripts/bench.sh not found (tried " + (tried.empty() ? "nothing" : tried) +
                              "); pass --script PATH or set IPCKIT_BENCH_SCRIPT to it");
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* b = app.add_subcommand("bench",
                               "Run the side-by-side benchmarks (scripts/bench.sh); arguments are passed on "
                               "(section names, --list, --strict)");
  b->add_option("--script", a->script, "The bench.sh to run (default: $IPCKIT_BENCH_SCRIPT, then the source tree)");
  b->allow_extras();
  b->prefix_command();
  return {b, [a, b] { return run_bench(*a, b->remaining()); }};
}

}  // namespace ipckit::cli
