// runner sweep FILE / runner run FILE --index I: train and evaluate grid points, in this process,
// in parallel child processes (--jobs) or as a Slurm job array (--launcher slurm).
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "accel/cuda_graphs.hpp"
#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "launch/local_launcher.hpp"
#include "store/run_store.hpp"
#include "launch/slurm_launcher.hpp"

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
  bool no_cuda_graphs = false;
  bool verbose = false;
  bool quiet = false;
  std::string progress;  // empty: auto, or none with --quiet
  double progress_every = 30;
  std::vector<std::int64_t> indices;
  std::string device;  // runner run --device: where to run, the identity unchanged
  int jobs = 1;
  std::string devices;
  std::string launcher = "local";
  SlurmSettings slurm;
  PluginArgs plugins;
};

// The flags a child `runner run` repeats from its parent.
std::vector<std::string> pass_through(const SweepArgs& a, bool absolute) {
  std::vector<std::string> out;
  for (const auto& o : a.overrides) {
    out.push_back("--set");
    out.push_back(o);
  }
  for (const auto& d : a.plugins.plugin_dirs) {
    out.push_back("--plugin-dir");
    out.push_back(absolute ? std::filesystem::absolute(d).string() : d);
  }
  if (a.verbose) out.push_back("-v");
  if (a.quiet) out.push_back("-q");
  if (a.no_cuda_graphs) out.push_back("--no-cuda-graphs");
  return out;
}

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
      ("verbose,v", po::bool_switch(&a.verbose), "log more: debug lines and one line per epoch")
      ("quiet,q", po::bool_switch(&a.quiet), "log only warnings and errors; no progress")
      ("progress", po::value(&a.progress),
       "live progress: auto (bars on a terminal, else lines), bars, lines, json (one line per event on stdout), none")
      ("progress-every", po::value(&a.progress_every), "seconds between progress lines of running runs (default 30)")
      ("no-cuda-graphs", po::bool_switch(&a.no_cuda_graphs),
       "on CUDA, run training steps and samplers eagerly instead of replaying CUDA graphs");
  if (single) {
    desc.add_options()("index", po::value(&a.indices)->composing()->required(),
                       "grid index of the run; repeat it to run several in turn (the points of one training)")
      ("device", po::value(&a.device), "run on this device instead of the file's (cpu, cuda:N); the run's identity stays");
  } else {
    desc.add_options()("dry-run", po::bool_switch(&a.dry_run), "print the grid and run nothing")
      ("jobs,j", po::value(&a.jobs), "run N grid points at once, each a child process with threads/N torch threads (default 1: in this process)")
      ("devices", po::value(&a.devices), "spread the runs over these devices, round-robin: cuda:0,cuda:1 (with --jobs)")
      ("launcher", po::value(&a.launcher), "local (default) or slurm: submit the grid as one Slurm job array")
      ("partition", po::value(&a.slurm.partition), "slurm: the partition to submit to")
      ("time", po::value(&a.slurm.time), "slurm: time limit of each task (sbatch --time)")
      ("gpus-per-task", po::value(&a.slurm.gpus_per_task), "slurm: GPUs of each task")
      ("max-parallel", po::value(&a.slurm.max_parallel), "slurm: at most K tasks at once (--array=...%K)")
      ("wait", po::bool_switch(&a.slurm.wait), "slurm: wait for the job array, then merge its results")
      ("batch-grid", po::bool_switch(&a.batch_grid),
       "train grid points that differ only in schedule or seed as one batched model (in this process)");
  }
  a.plugins.add_to(desc);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  const auto usage = single ? "runner run FILE --index I [options]" : "runner sweep FILE [options]";
  if (!parse_args(args, usage, desc, positional, vm)) return 0;

  configure_runtime(a.threads, a.verbose, a.quiet);
  if (a.no_cuda_graphs) set_cuda_graphs_enabled(false);
  const auto progress = a.dry_run ? nullptr : make_progress(a.progress, a.progress_every, a.quiet);
  a.plugins.load();
  const auto grid = load_and_validate(a.file, a.overrides);
  for (const auto index : a.indices) {
    if (index < 0 || index >= static_cast<std::int64_t>(grid.runs.size())) {
      throw InputError("--index " + std::to_string(index) + ": the grid of " + a.file + " has runs 0.." +
                       std::to_string(grid.runs.size() - 1));
    }
    if (std::count(a.indices.begin(), a.indices.end(), index) > 1) {
      throw InputError("--index " + std::to_string(index) + " is given twice");
    }
  }
  if (a.extend && a.new_sweep) throw InputError("--extend and --new-sweep: choose one");
  if (a.jobs < 1) throw InputError("--jobs " + std::to_string(a.jobs) + ": must be at least 1");
  if (a.batch_grid && (a.jobs > 1 || a.launcher != "local")) {
    throw InputError("--batch-grid trains its groups in this process: not with --jobs or --launcher slurm");
  }
  if (a.launcher != "local" && a.launcher != "slurm") {
    throw InputError("--launcher " + a.launcher + ": expected local or slurm");
  }
  const bool slurm_flags = !a.slurm.partition.empty() || !a.slurm.time.empty() || a.slurm.gpus_per_task > 0 ||
                           a.slurm.max_parallel > 0 || a.slurm.wait;
  if (slurm_flags && a.launcher != "slurm") {
    throw InputError("--partition, --time, --gpus-per-task, --max-parallel and --wait need --launcher slurm");
  }
  if (a.slurm.gpus_per_task < 0 || a.slurm.max_parallel < 0) {
    throw InputError("--gpus-per-task and --max-parallel must not be negative");
  }
  const auto devices = a.devices.empty() ? std::vector<std::string>() : parse_devices(a.devices);
  if (!a.device.empty()) resolve_device(a.device);
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
  if (single) options.only_indices = a.indices;
  if (!a.device.empty()) options.device = a.device;
  ChildCommand child;
  child.runner = std::filesystem::read_symlink("/proc/self/exe").string();
  child.sweep_file = a.file;
  child.out_dir = a.out;
  SweepSummary summary;
  if (a.launcher == "slurm") {
    SlurmLaunchOptions slurm;
    slurm.settings = a.slurm;
    child.out_dir = std::filesystem::absolute(a.out);
    child.pass_through = pass_through(a, true);
    slurm.child = child;
    slurm.db = std::filesystem::absolute(a.db);
    slurm.threads = a.threads;
    slurm.retry_failed = a.retry_failed;
    slurm.grid_change = options.grid_change;
    summary = run_sweep_slurm(grid, store, Registry::instance(), slurm);
    if (!a.slurm.wait) return 0;
  } else if (a.jobs > 1 || !devices.empty()) {
    LocalLaunchOptions local;
    child.pass_through = pass_through(a, false);
    local.child = child;
    local.jobs = a.jobs;
    local.threads = a.threads;
    local.devices = devices;
    local.retry_failed = a.retry_failed;
    local.grid_change = options.grid_change;
    local.progress = progress.get();
    summary = run_sweep_local(grid, store, Registry::instance(), local);
  } else {
    options.engine.progress = progress.get();
    options.batch_grid = a.batch_grid;
    summary = run_sweep(grid, store, Registry::instance(), options);
  }
  if (progress) progress->finish();
  if (summary.interrupted) return 128 + summary.interrupted;
  const int selected = single ? static_cast<int>(a.indices.size()) : static_cast<int>(grid.runs.size());
  spdlog::info("{}: {} of {} run{} done ({} already before), {} failed; results in {}", summary.name,
               summary.done, selected, selected == 1 ? "" : "s", summary.skipped, summary.failed, a.db);
  if (summary.input_failed > 0) return 2;  // some run's input (a data file) was bad
  return summary.failed > 0 ? 1 : 0;
}

}  // namespace

int sweep_command(const Args& args) { return execute(args, false); }
int run_command(const Args& args) { return execute(args, true); }

}  // namespace difflab::app
