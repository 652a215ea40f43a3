// runner sweep FILE / runner run FILE --index I: train and evaluate grid points.
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "difflab/errors.hpp"
#include "engine.hpp"
#include "run_store.hpp"

namespace difflab::app {
namespace {

struct SweepArgs {
  std::string file;
  std::string db = "runs.sqlite";
  std::string out = "runs";
  std::vector<std::string> overrides;
  int threads = 0;
  bool dry_run = false;
  bool retry_failed = false;
  bool extend = false;
  bool new_sweep = false;
  bool batch_grid = false;
  bool verbose = false;
  bool quiet = false;
  std::int64_t index = -1;
  PluginArgs plugins;
};

void print_grid(const SweepGrid& grid) {
  std::cout << grid.name << ": " << grid.runs.size() << " run" << (grid.runs.size() == 1 ? "" : "s");
  if (!grid.axes.empty()) {
    std::cout << " over";
    for (const auto& a : grid.axes) std::cout << " " << a;
  }
  std::cout << "\n";
  for (const auto& run : grid.runs) {
    std::cout << "  " << run.index << "  " << run.config_hash << "  " << format_axes(run.axes, "  ")
              << "\n";
  }
}

int execute(const Args& args, bool single) {
  SweepArgs a;
  po::options_description desc(single ? "runner run options" : "runner sweep options");
  desc.add_options()("help,h", "show this help")
      ("file", po::value(&a.file)->required(), "sweep file (YAML)")
      ("db", po::value(&a.db), "SQLite database to record into (default runs.sqlite)")
      ("out", po::value(&a.out), "folder for checkpoints and samples (default runs)")
      ("set", po::value(&a.overrides)->composing(), "override a key: --set train.lr=1e-3 (repeatable)")
      ("threads", po::value(&a.threads), "torch threads (default: all cores)")
      ("retry-failed", po::bool_switch(&a.retry_failed), "run again the runs that failed before")
      ("extend", po::bool_switch(&a.extend), "the file's grid changed: add its new runs to the recorded sweep")
      ("new-sweep", po::bool_switch(&a.new_sweep), "the file's grid changed: record it as a new sweep NAME-2")
      ("verbose,v", po::bool_switch(&a.verbose), "log more")
      ("quiet,q", po::bool_switch(&a.quiet), "log only warnings and errors");
  if (single) {
    desc.add_options()("index", po::value(&a.index)->required(), "grid index of the run");
  } else {
    desc.add_options()("dry-run", po::bool_switch(&a.dry_run), "print the grid and run nothing")
        ("batch-grid", po::bool_switch(&a.batch_grid),
         "train grid points that differ only in schedule or seed as one batched model");
  }
  a.plugins.add_to(desc);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  const auto usage = single ? "runner run FILE --index I [options]" : "runner sweep FILE [options]";
  if (!parse_args(args, usage, desc, positional, vm)) return 0;

  configure_runtime(a.threads, a.verbose, a.quiet);
  a.plugins.load();
  const auto grid = load_and_validate(a.file, a.overrides);
  if (single && (a.index < 0 || a.index >= static_cast<std::int64_t>(grid.runs.size()))) {
    throw InputError("--index " + std::to_string(a.index) + ": the grid of " + a.file + " has runs 0.." +
                     std::to_string(grid.runs.size() - 1));
  }
  if (a.extend && a.new_sweep) throw InputError("--extend and --new-sweep: choose one");
  if (a.dry_run) {
    print_grid(grid);
    return 0;
  }
  if (const auto parent = std::filesystem::path(a.db).parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);  // RunStore names the path if this failed
  }
  RunStore store(a.db);
  SweepOptions options;
  options.engine.out_dir = a.out;
  options.retry_failed = a.retry_failed;
  options.grid_change = a.extend ? GridChange::extend : a.new_sweep ? GridChange::new_sweep : GridChange::refuse;
  if (single) options.only_index = a.index;
  options.batch_grid = a.batch_grid;
  const auto summary = run_sweep(grid, store, Registry::instance(), options);
  const int selected = single ? 1 : static_cast<int>(grid.runs.size());
  spdlog::info("{}: {} of {} run{} done ({} already before), {} failed; results in {}", summary.name,
               summary.done, selected, selected == 1 ? "" : "s", summary.skipped, summary.failed, a.db);
  if (summary.input_failed > 0) return 2;  // some run's input (a data file) was bad
  return summary.failed > 0 ? 1 : 0;
}

}  // namespace

int sweep_command(const Args& args) { return execute(args, false); }
int run_command(const Args& args) { return execute(args, true); }

}  // namespace difflab::app
