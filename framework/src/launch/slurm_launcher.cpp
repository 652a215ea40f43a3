#include "launch/slurm_launcher.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "store/store_merge.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

// Runs a shell command; returns its exit status, stdout+stderr in `output`.
int run_shell(const std::string& command, std::string& output) {
  output.clear();
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw RunError("cannot run: " + command);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string first_line(const std::string& text) {
  auto line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// The runs to submit, grouped by training: one array task per group, numbered by its first grid
// index, runs its points in turn, so the model is trained once and the others reuse it.
using TrainingGroups = std::map<std::int64_t, std::vector<const RunConfig*>>;

TrainingGroups group_by_training(const std::vector<const RunConfig*>& runs) {
  TrainingGroups groups;
  std::map<std::string, std::int64_t> leader;
  for (const auto* run : runs) {
    const auto first = leader.emplace(run->train_hash, run->index).first->second;  // kept if present
    groups[first].push_back(run);
  }
  return groups;
}

// `merge_first`: the shards a task folds into its own before it runs (a latent task: its
// autoencoder task's, which the array it depends on has written).
std::string batch_script(const SlurmLaunchOptions& o, const SweepGrid& grid, const fs::path& sweep_copy,
                         const fs::path& slurm_dir, int threads, const TrainingGroups& groups,
                         const std::map<std::int64_t, std::vector<fs::path>>& merge_first) {
  const auto& s = o.settings;
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Written by runner sweep --launcher slurm: one array task per training (numbered by its\n"
      << "# first grid index), running that training's grid points in turn into its own SQLite\n"
      << "# shard; `runner merge` folds them into " << o.db.string() << ".\n"
      << "#SBATCH --job-name=" << "difflab-" << grid.name << "\n"
      << "#SBATCH --output=" << (slurm_dir / "logs" / "%A_%a.log").string() << "\n"
      << "#SBATCH --cpus-per-task=" << threads << "\n"
      << "#SBATCH --chdir=" << fs::current_path().string() << "\n";
  if (!s.partition.empty()) out << "#SBATCH --partition=" << s.partition << "\n";
  if (!s.time.empty()) out << "#SBATCH --time=" << s.time << "\n";
  if (s.gpus_per_task > 0) out << "#SBATCH --gpus-per-task=" << s.gpus_per_task << "\n";
  // The shard path holds the task id, so the command is written with it as a shell variable.
  const auto shard_dir = (o.child.out_dir / grid.name / "shards").string();
  RunConfig placeholder;
  placeholder.index = 0;
  auto argv = child_argv(o.child, grid, o.grid_change, placeholder, "SHARD", threads, "");
  argv[2] = sweep_copy.string();
  out << "set -u\n"
      << "i=${SLURM_ARRAY_TASK_ID:?not a Slurm array task}\n"
      << "case \"$i\" in\n";
  for (const auto& [first, runs] : groups) {
    out << "  " << first << ")";
    if (const auto it = merge_first.find(first); it != merge_first.end()) {
      out << "\n    " << shell_quote(o.child.runner) << " merge -q --db " << shell_quote(shard_dir + "/run-")
          << "\"$i\".sqlite";
      for (const auto& shard : it->second) out << " " << shell_quote(shard.string());
      out << " || exit 2\n   ";
    }
    out << " indices=(";
    for (std::size_t k = 0; k < runs.size(); ++k) out << (k ? " " : "") << "--index " << runs[k]->index;
    out << ");;\n";
  }
  out << "  *) echo \"difflab: no grid points for task $i\" >&2; exit 2;;\n"
      << "esac\n"
      << "echo \"difflab: task ${SLURM_ARRAY_JOB_ID:-?}_$i on $(hostname) at $(date -u +%FT%TZ)\"\n"
      << "exec";
  for (std::size_t k = 0; k < argv.size(); ++k) {
    if (k == 3) {
      continue;  // --index: the group's, below
    } else if (k == 4) {
      out << " \"${indices[@]}\"";
    } else if (k == 6) {
      out << " " << shell_quote(shard_dir + "/run-") << "\"$i\".sqlite";  // --db
    } else {
      out << " " << shell_quote(argv[k]);
    }
  }
  out << "\n";
  return out.str();
}

}  // namespace

std::string array_spec(const std::vector<std::int64_t>& indices, int max_parallel) {
  std::string out;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(indices[i]);
    if (j > i) out += "-" + std::to_string(indices[j]);
    i = j + 1;
  }
  if (max_parallel > 0) out += "%" + std::to_string(max_parallel);
  return out;
}

std::vector<SlurmTaskState> parse_scontrol_tasks(const std::string& text) {
  std::vector<SlurmTaskState> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word;
    SlurmTaskState t;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq == std::string::npos) continue;
      const auto key = word.substr(0, eq), value = word.substr(eq + 1);
      if (key == "ArrayTaskId") {
        const bool number = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        t.task = number ? std::stoll(value) : -1;
      } else if (key == "JobState") {
        t.state = value;
      } else if (key == "ExitCode") {
        t.exit_code = value;
      }
    }
    if (t.task >= 0) out.push_back(t);
  }
  return out;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

SweepSummary run_sweep_slurm(SweepGrid grid, RunStore& store, const Registry& registry,
                             const SlurmLaunchOptions& options) {
  const auto& out_dir = options.child.out_dir;
  std::string output;
  {  // a job of this sweep still queued or running would run its tasks twice
    std::ifstream jobs(out_dir / grid.name / "slurm" / "jobs.txt");
    std::string line;
    while (std::getline(jobs, line)) {
      const auto job = line.substr(0, line.find(' '));
      if (job.empty() || job.find_first_not_of("0123456789") != std::string::npos) continue;
      if (run_shell("squeue -h -j " + job + " -o %i", output) == 0 && !first_line(output).empty()) {
        throw InputError("the Slurm job " + job + " of the sweep '" + grid.name + "' (" +
                         (out_dir / grid.name / "slurm" / "jobs.txt").string() +
                         ") is still queued or running; wait for it to end (then runner merge) or scancel it");
      }
    }
  }
  // Before the grid is compared, as the local launcher does (a continued run changes its hash).
  merge_leftover_shards(store, out_dir, grid.name);
  const auto sweep_id = record_sweep(grid, store, registry, options.grid_change);
  const auto slurm_dir = out_dir / grid.name / "slurm";
  SweepSummary summary;
  summary.name = grid.name;
  const auto runs = runs_to_launch(grid, sweep_id, store, options.retry_failed, summary);
  if (runs.empty()) {
    spdlog::info("{}: no run to submit ({} done, {} failed)", grid.name, summary.done, summary.failed);
    return summary;
  }
  fs::create_directories(slurm_dir / "logs");
  const auto sweep_copy = slurm_dir / "sweep.yaml";  // every task reads the text the parent read
  std::ofstream(sweep_copy) << grid.text;
  const int threads = options.threads > 0 ? options.threads : 1;
  // Autoencoders train in a first array; the runs that diffuse their latents in a second that
  // starts when the first has ended (afterany: a latent task whose autoencoder failed records why).
  std::vector<const RunConfig*> first_runs, later_runs;
  for (const auto* run : runs) (run->task == Task::autoencoder ? first_runs : later_runs).push_back(run);
  std::vector<TrainingGroups> arrays;
  if (first_runs.empty() || later_runs.empty()) {
    arrays.push_back(group_by_training(runs));
  } else {
    arrays.push_back(group_by_training(first_runs));
    arrays.push_back(group_by_training(later_runs));
  }
  TrainingGroups groups;
  std::map<std::int64_t, std::int64_t> task_of;  // grid index -> its task (the group's first index)
  std::map<std::string, std::int64_t> launched_autoencoders;
  for (const auto& array : arrays) {
    for (const auto& [first, members] : array) {
      seed_shard(store, grid.name, members, shard_path(out_dir, grid.name, first));
      groups[first] = members;
      for (const auto* run : members) {
        task_of[run->index] = first;
        if (run->task == Task::autoencoder) launched_autoencoders.emplace(run->train_hash, first);
      }
    }
  }
  std::map<std::int64_t, std::vector<fs::path>> merge_first;
  for (const auto& [first, members] : groups) {
    std::set<std::int64_t> needed;
    for (const auto* run : members) {
      if (!is_latent(*run)) continue;
      if (const auto it = launched_autoencoders.find(run->autoencoder_hash); it != launched_autoencoders.end()) {
        needed.insert(it->second);
      }
    }
    for (const auto task : needed) merge_first[first].push_back(shard_path(out_dir, grid.name, task));
  }
  const auto script = slurm_dir / "array.sh";
  std::ofstream(script) << batch_script(options, grid, sweep_copy, slurm_dir, threads, groups, merge_first);
  std::vector<std::string> jobs;                   // in submission order
  std::map<std::int64_t, std::string> job_of;      // task -> its array job
  for (const auto& array : arrays) {
    std::vector<std::int64_t> indices;  // array task ids: each group's first grid index
    for (const auto& [first, members] : array) indices.push_back(first);
    const auto spec = array_spec(indices, options.settings.max_parallel);
    const auto after = jobs.empty() ? std::string() : " --dependency=afterany:" + jobs.back();
    const auto submit = "sbatch --parsable --array=" + spec + after + " " + shell_quote(script.string());
    if (run_shell(submit, output) != 0) {
      throw InputError("--launcher slurm: " + submit + " failed: " + first_line(output) +
                       " (is Slurm reachable from here? sinfo says)");
    }
    const auto job = first_line(output).substr(0, first_line(output).find(';'));
    std::ofstream(slurm_dir / "jobs.txt", std::ios::app) << job << " " << spec << " " << utc_now() << "\n";
    std::size_t members = 0;
    for (const auto& [first, group] : array) members += group.size();
    spdlog::info("{}: submitted Slurm job array {} ({} task{} for {} run{}: {}{}); logs {}/logs/{}_<index>.log",
                 grid.name, job, array.size(), array.size() == 1 ? "" : "s", members, members == 1 ? "" : "s",
                 spec, jobs.empty() ? "" : ", after job " + jobs.back(), slurm_dir.string(), job);
    for (const auto index : indices) job_of[index] = job;
    jobs.push_back(job);
  }
  if (!options.settings.wait) {
    for (const auto& job : jobs) std::cout << job << "\n";
    spdlog::info("when it ends: runner merge --db {} {}", options.db.string(),
                 (out_dir / grid.name / "shards").string());
    return summary;
  }

  // Wait for each array to leave the queue (the second cannot end before the first), then read
  // each task's end from scontrol.
  const auto started = std::chrono::steady_clock::now();
  std::map<std::int64_t, SlurmTaskState> ended;  // by task
  for (const auto& job : jobs) {
    std::string last_states;
    while (true) {
      if (run_shell("squeue -h -j " + job + " -o '%i %T'", output) != 0 || first_line(output).empty()) break;
      std::map<std::string, int> states;
      std::istringstream lines(output);
      std::string id, state;
      while (lines >> id >> state) ++states[state];
      std::string text;
      for (const auto& [s, n] : states) text += (text.empty() ? "" : ", ") + std::to_string(n) + " " + s;
      if (text != last_states) spdlog::info("job {}: {}", job, text);
      last_states = text;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    run_shell("scontrol -o show job " + job, output);
    for (const auto& t : parse_scontrol_tasks(output)) {
      if (job_of.count(t.task) && job_of.at(t.task) == job) ended[t.task] = t;
    }
  }
  for (const auto& [shard, members] : groups) {
    const auto path = shard_path(out_dir, grid.name, shard);
    try {
      const RunStore from(path.string(), RunStore::Access::read_only);
      merge_store(from, store);
    } catch (const std::exception& e) {
      spdlog::error("{}: cannot merge {}: {}", grid.name, path.string(), e.what());
    }
  }
  for (const auto* run : runs) {
    const auto record = store.find_run(sweep_id, run->config_hash);
    const auto task_index = task_of.at(run->index);
    const auto task = job_of.at(task_index) + "_" + std::to_string(task_index);
    const auto log = (slurm_dir / "logs" / (task + ".log")).string();
    if (record->status == RunStatus::done) {
      ++summary.done;
      continue;
    }
    const auto it = ended.find(task_index);
    std::string where = "Slurm task " + task;
    if (it != ended.end()) where += " " + it->second.state + " (exit code " + it->second.exit_code + ")";
    else where += " ended without a record in scontrol";
    const auto reason = record->status == RunStatus::failed ? record->reason + "; " + where + ", log " + log
                                                            : where + " without a final status; log " + log;
    store.mark_failed(record->id, reason);
    ++summary.failed;
    spdlog::error("run {} failed: {}", run->index, reason);
  }
  spdlog::info("job {} ended after {:.0f} s: {} done, {} failed; merged into {}", join(jobs, ", "),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), summary.done,
               summary.failed, options.db.string());
  return summary;
}

}  // namespace difflab
