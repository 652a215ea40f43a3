// The --jobs loop with what only it uses: child processes with piped output, forwarded signals,
// devices handed out to slots, shards merged as children exit. One cohesive piece, kept whole.
#include "launch/local_launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "store/store_merge.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

volatile sig_atomic_t g_signal = 0;  // the SIGINT/SIGTERM the parent received, to forward

void note_signal(int sig) { g_signal = sig; }

// Installs the forwarding handlers for the parent's lifetime of the loop; restores on exit.
class SignalForwarding {
 public:
  SignalForwarding() {
    g_signal = 0;
    struct sigaction action {};
    action.sa_handler = note_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: poll() returns at once
    sigaction(SIGINT, &action, &saved_int_);
    sigaction(SIGTERM, &action, &saved_term_);
  }
  ~SignalForwarding() {
    sigaction(SIGINT, &saved_int_, nullptr);
    sigaction(SIGTERM, &saved_term_, nullptr);
  }

 private:
  struct sigaction saved_int_ {};
  struct sigaction saved_term_ {};
};

struct Child {
  pid_t pid = 0;
  int fd = -1;  // read end of the child's stdout+stderr
  std::string pending;  // a partial line
  std::string last_line;
  const RunConfig* run = nullptr;
  std::int64_t run_id = 0;
  int slot = 0;
  fs::path shard, log;
  std::ofstream log_file;
  std::chrono::steady_clock::time_point start;
};

// Every line a child prints comes here. Its progress events (json lines) go to the parent's
// display, except its end: the parent reports that once it has merged the shard. Every other
// line goes to the run's log.
void on_child_line(Child& child, const std::string& line, ProgressSink* progress) {
  if (const auto event = parse_progress_line(line)) {
    if (progress && event->kind != ProgressEvent::Kind::end) progress->report(*event);
    return;
  }
  child.log_file << line << '\n';
  child.log_file.flush();
  if (!line.empty()) child.last_line = line;
}

// Reads what is there; returns false at end of file.
bool read_child(Child& child, ProgressSink* progress) {
  char buffer[4096];
  const ssize_t n = ::read(child.fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) {
    if (!child.pending.empty()) on_child_line(child, child.pending, progress);
    child.pending.clear();
    return false;
  }
  child.pending.append(buffer, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (auto nl = child.pending.find('\n'); nl != std::string::npos; nl = child.pending.find('\n', start)) {
    on_child_line(child, child.pending.substr(start, nl - start), progress);
    start = nl + 1;
  }
  child.pending.erase(0, start);
  return true;
}

std::string signal_text(int sig) {
  const char* name = sigabbrev_np(sig);
  return std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
}

// Starts `argv` with stdout and stderr into a pipe; the child dies with the parent.
void spawn(Child& child, const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw RunError(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw RunError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    const char message[] = "runner: cannot start the child runner\n";
    (void)!::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  child.pid = pid;
  child.fd = fds[0];
}

}  // namespace

std::vector<std::string> parse_devices(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const auto item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) throw InputError("--devices " + list + ": an empty device in the list");
    try {
      torch::Device d(item);
      (void)d;
    } catch (const c10::Error&) {
      throw InputError("--devices " + list + ": '" + item + "' is not a device (expected cpu, cuda or cuda:N)");
    }
    resolve_device(item);  // InputError for a CUDA device this machine lacks
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.empty()) throw InputError("--devices: empty list");
  return out;
}

std::vector<std::string> assign_devices(const std::vector<std::string>& devices, int jobs) {
  std::vector<std::string> out;
  for (int slot = 0; slot < jobs; ++slot) {
    out.push_back(devices.empty() ? std::string() : devices[static_cast<std::size_t>(slot) % devices.size()]);
  }
  return out;
}

std::vector<std::string> default_devices(const SweepGrid& grid) {
  bool any_auto = false;
  for (const auto& r : grid.runs) any_auto = any_auto || r.device == "auto";
  const auto count = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  std::vector<std::string> out;
  if (!any_auto || count < 2) return out;
  for (std::size_t i = 0; i < count; ++i) out.push_back("cuda:" + std::to_string(i));
  return out;
}

int threads_per_child(int threads, int jobs) {
  const int total = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, total / std::max(1, jobs));
}

fs::path shard_path(const fs::path& out_dir, const std::string& sweep, std::int64_t index) {
  return out_dir / sweep / "shards" / ("run-" + std::to_string(index) + ".sqlite");
}

fs::path log_path(const fs::path& out_dir, const std::string& sweep, std::int64_t index) {
  return out_dir / sweep / "logs" / ("run-" + std::to_string(index) + ".log");
}

void merge_leftover_shards(RunStore& store, const fs::path& out_dir, const std::string& sweep) {
  const auto dir = out_dir / sweep / "shards";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  const auto shards = find_shards({dir.string()});
  if (shards.empty()) return;
  const auto merged = merge_shards(shards, store);
  spdlog::info("merged {} shard{} left in {} ({} run{} with results)", shards.size(),
               shards.size() == 1 ? "" : "s", dir.string(), merged.runs, merged.runs == 1 ? "" : "s");
}

void seed_shard(const RunStore& store, const std::string& sweep, const std::vector<const RunConfig*>& runs,
                const fs::path& shard) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(shard.string() + suffix, ec);
  fs::create_directories(shard.parent_path());
  RunStore into(shard.string());
  MergeFilter own;
  own.sweep = sweep;
  own.config_hashes = std::vector<std::string>{};
  for (const auto* run : runs) own.config_hashes->push_back(run->config_hash);
  merge_store(store, into, own);
  const auto sweep_id = into.find_sweep(sweep)->id;
  bool any_checkpoint = false;
  for (const auto* run : runs) {
    auto record = into.find_run(sweep_id, run->config_hash);
    RunRecord state = *record;  // the parent chose to run it: pending, whatever it was before
    state.status = RunStatus::pending;
    state.reason.clear();
    into.set_run_state(record->id, state);
    any_checkpoint = any_checkpoint || !into.checkpoints(record->id).empty();
  }
  // A done run of `train_hash` and its checkpoints, from whichever sweep holds it.
  const auto copy_trained = [&](const std::string& train_hash) {
    const auto trained = store.find_trained(train_hash);
    if (!trained) return;
    for (const auto& s : store.sweeps()) {
      if (s.id != trained->sweep_id) continue;
      MergeFilter reuse;
      reuse.sweep = s.name;
      reuse.config_hashes = std::vector<std::string>{trained->config_hash};
      merge_store(store, into, reuse);
    }
  };
  for (const auto* run : runs) {  // a latent run's autoencoder, trained before it was launched
    if (is_latent(*run)) copy_trained(run->autoencoder_hash);
  }
  if (any_checkpoint || runs.empty()) return;
  copy_trained(runs.front()->train_hash);  // its checkpoints to reuse
}

std::vector<const RunConfig*> runs_to_launch(const SweepGrid& grid, std::int64_t sweep_id, RunStore& store,
                                             bool retry_failed, SweepSummary& summary) {
  std::vector<const RunConfig*> out;
  for (const auto& run : grid.runs) {
    const auto record = store.find_run(sweep_id, run.config_hash);
    if (record->status == RunStatus::done) {
      ++summary.done;
      ++summary.skipped;
    } else if (record->status == RunStatus::running && process_alive(record->pid)) {
      spdlog::warn("run {} is being run by process {}; skipped", run.index, record->pid);
    } else if (record->status == RunStatus::failed && !retry_failed) {
      spdlog::warn("run {} failed before ({}); skipped, use --retry-failed to run it again", run.index,
                   record->reason);
      ++summary.failed;
    } else {
      out.push_back(&run);
    }
  }
  return out;
}

std::vector<std::string> child_argv(const ChildCommand& child, const SweepGrid& grid, GridChange change,
                                    const RunConfig& run, const fs::path& shard, int threads,
                                    const std::string& device) {
  std::vector<std::string> argv = {child.runner, "run", child.sweep_file, "--index", std::to_string(run.index),
                                   "--db", shard.string(), "--out", child.out_dir.string(),
                                   "--threads", std::to_string(threads)};
  argv.insert(argv.end(), child.pass_through.begin(), child.pass_through.end());
  argv.push_back("--set");
  argv.push_back("name=" + grid.name);  // a sweep recorded as NAME-2 (--new-sweep) stays so
  if (change == GridChange::extend) argv.push_back("--extend");
  if (!device.empty()) {
    argv.push_back("--device");
    argv.push_back(device);
  }
  return argv;
}

SweepSummary run_sweep_local(SweepGrid grid, RunStore& store, const Registry& registry,
                             const LocalLaunchOptions& options) {
  // Shards an interrupted sweep left are folded in before the grid is compared: they hold runs
  // as recorded then, which a continued run (a raised train.epochs) no longer matches afterwards.
  merge_leftover_shards(store, options.child.out_dir, grid.name);
  const auto sweep_id = record_sweep(grid, store, registry, options.grid_change);
  SweepSummary summary;
  summary.name = grid.name;
  auto queue = runs_to_launch(grid, sweep_id, store, options.retry_failed, summary);
  auto* progress = options.progress;
  if (progress) {
    progress->sweep_started(grid.name, static_cast<std::int64_t>(grid.runs.size()));
    for (const auto& run : grid.runs) {
      if (std::find(queue.begin(), queue.end(), &run) != queue.end()) continue;
      const auto record = store.find_run(sweep_id, run.config_hash);
      progress->report(record->status == RunStatus::failed
                           ? ProgressEvent::finished(run.index, "failed", "failed before: " + record->reason)
                           : ProgressEvent::finished(run.index, "skipped", "done before"));
    }
  }
  const int jobs = std::max(1, options.jobs);
  const int threads = threads_per_child(options.threads, jobs);
  const auto devices = options.devices.empty() ? default_devices(grid) : options.devices;
  const auto slot_devices = assign_devices(devices, jobs);
  std::vector<std::unique_ptr<Child>> children;
  std::vector<bool> slot_busy(static_cast<std::size_t>(jobs), false);
  std::set<std::string> training;  // train hashes being trained now: one run each at a time
  bool forwarded = false;
  SignalForwarding forwarding;

  const auto counts = [&] {
    return fmt::format("{} done, {} running, {} failed", summary.done, children.size(), summary.failed);
  };
  const auto launch = [&](const RunConfig& run) {
    int slot = 0;
    while (slot_busy[static_cast<std::size_t>(slot)]) ++slot;
    auto child = std::make_unique<Child>();
    child->run = &run;
    child->run_id = store.find_run(sweep_id, run.config_hash)->id;
    child->slot = slot;
    child->shard = shard_path(options.child.out_dir, grid.name, run.index);
    child->log = log_path(options.child.out_dir, grid.name, run.index);
    seed_shard(store, grid.name, {&run}, child->shard);
    fs::create_directories(child->log.parent_path());
    child->log_file.open(child->log, std::ios::app);
    const auto& device = slot_devices[static_cast<std::size_t>(slot)];
    auto argv = child_argv(options.child, grid, options.grid_change, run, child->shard, threads, device);
    if (progress) argv.insert(argv.end(), {"--progress", "json"});  // its events, for our display
    std::string command;
    for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
    child->log_file << "# " << command << '\n';
    child->log_file.flush();
    spawn(*child, argv);
    child->start = std::chrono::steady_clock::now();
    store.mark_running(child->run_id, resolve_device(device.empty() ? run.device : device).str(), child->pid);
    slot_busy[static_cast<std::size_t>(slot)] = true;
    training.insert(run.train_hash);
    children.push_back(std::move(child));
    spdlog::info("run {} [{}] started{} (pid {}, log {}): {}", run.index, format_axes(run.axes),
                 device.empty() ? "" : " on " + device, children.back()->pid, children.back()->log.string(),
                 counts());
  };
  const auto finish = [&](std::size_t i, int status) {
    auto child = std::move(children[i]);
    children.erase(children.begin() + static_cast<std::ptrdiff_t>(i));
    ::close(child->fd);
    child->log_file.close();
    slot_busy[static_cast<std::size_t>(child->slot)] = false;
    training.erase(child->run->train_hash);
    const auto& run = *child->run;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - child->start).count();
    std::string merge_error;
    try {
      const RunStore shard(child->shard.string(), RunStore::Access::read_only);
      merge_store(shard, store);
    } catch (const std::exception& e) {
      merge_error = e.what();
    }
    const auto record = store.run(child->run_id);
    if (record->status == RunStatus::done) {
      ++summary.done;
      if (progress) progress->report(ProgressEvent::finished(run.index, "done"));
      spdlog::log(progress ? spdlog::level::debug : spdlog::level::info, "run {} done in {:.1f} s: {}",
                  run.index, seconds, counts());  // the progress display says so already
      return;
    }
    const bool input = WIFEXITED(status) && WEXITSTATUS(status) == 2;
    if (record->status != RunStatus::failed) {
      if (g_signal != 0 && merge_error.empty()) {  // interrupted: stays running, resumed next time
        if (progress) progress->report(ProgressEvent::finished(run.index, "skipped", "interrupted"));
        spdlog::warn("run {} interrupted; log {}", run.index, child->log.string());
        return;
      }
      std::string reason =
          WIFSIGNALED(status)
              ? "runner run was killed by signal " + signal_text(WTERMSIG(status))
              : "runner run exited with status " + std::to_string(WEXITSTATUS(status));
      reason += " without a final status";
      if (!merge_error.empty()) reason += " (its shard could not be merged: " + merge_error + ")";
      else if (!child->last_line.empty()) reason += " (last line: " + child->last_line + ")";
      reason += "; log " + child->log.string();
      store.mark_failed(child->run_id, reason);
    }
    ++summary.failed;
    if (input) ++summary.input_failed;
    if (progress) progress->report(ProgressEvent::finished(run.index, "failed", store.run(child->run_id)->reason));
    spdlog::error("run {} failed: {}: {}", run.index, store.run(child->run_id)->reason, counts());
  };

  std::size_t next = 0;  // queue[next] is the next run to launch
  // A latent run starts once its autoencoder is trained (its shard then gets the checkpoints).
  const auto autoencoder_ready = [&](const RunConfig& run) { return !is_latent(run) || latent_source(store, run); };
  // When its autoencoder failed, a latent run fails too, with that reason.
  const auto failed_autoencoder = [&](const RunConfig& run) {
    if (!is_latent(run)) return false;
    const auto& autoencoder = grid.runs.at(static_cast<std::size_t>(run.autoencoder_index));
    const auto state = store.find_run(sweep_id, autoencoder.config_hash);
    const bool queued =  // not launched yet (a failed one retried)
        std::find(queue.begin() + static_cast<std::ptrdiff_t>(next), queue.end(), &autoencoder) != queue.end();
    if (state->status != RunStatus::failed || queued) return false;
    fail_with_autoencoder(run, *state, store, sweep_id, summary, progress);
    return true;
  };

  // Claims a run in the store before its child starts, so that another runner on the same store
  // never starts it too; says what happened when the claim is refused.
  std::vector<const RunConfig*> waiting;  // another process trains the same model: later
  const auto claim = [&](const RunConfig& run) {
    const auto record = store.find_run(sweep_id, run.config_hash);
    const auto result = store.claim_run(record->id, "", ::getpid(), options.retry_failed, process_alive);
    if (result.outcome == Claim::claimed) return true;
    if (result.outcome == Claim::training_elsewhere) {
      waiting.push_back(&run);
    } else {
      note_refused_claim(result, run, summary, progress);
    }
    return false;
  };

  auto retry_at = std::chrono::steady_clock::now();
  while (!children.empty() || ((next < queue.size() || !waiting.empty()) && g_signal == 0)) {
    if (next >= queue.size() && !waiting.empty() && std::chrono::steady_clock::now() >= retry_at) {
      queue.insert(queue.end(), waiting.begin(), waiting.end());  // try them again
      waiting.clear();
      retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    }
    if (g_signal != 0 && !forwarded) {
      forwarded = true;
      spdlog::warn("signal {}: passing it to {} running run{}", signal_text(g_signal), children.size(),
                   children.size() == 1 ? "" : "s");
      for (const auto& c : children) ::kill(c->pid, g_signal);
    }
    // Fill the free slots, never two runs of one training at once (the second reuses the first's).
    while (g_signal == 0 && static_cast<int>(children.size()) < jobs) {
      std::size_t pick = next;
      while (pick < queue.size() &&
             (training.count(queue[pick]->train_hash) || !autoencoder_ready(*queue[pick]))) {
        if (failed_autoencoder(*queue[pick])) {  // it cannot run: its autoencoder failed
          queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(pick));
          continue;
        }
        ++pick;
      }
      if (pick >= queue.size()) break;
      std::rotate(queue.begin() + static_cast<std::ptrdiff_t>(next), queue.begin() + static_cast<std::ptrdiff_t>(pick),
                  queue.begin() + static_cast<std::ptrdiff_t>(pick) + 1);
      const auto& run = *queue[next++];
      if (claim(run)) launch(run);
    }
    if (children.empty()) {  // waiting for another process (a claim, an autoencoder)
      if (!waiting.empty() || next < queue.size()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    std::vector<pollfd> fds;
    for (const auto& c : children) fds.push_back({c->fd, POLLIN, 0});
    const int ready = ::poll(fds.data(), fds.size(), 1000);
    if (ready < 0 && errno != EINTR) throw RunError(std::string("poll: ") + std::strerror(errno));
    for (std::size_t i = children.size(); i-- > 0;) {
      if (ready <= 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (read_child(*children[i], options.progress)) continue;
      int status = 0;
      while (::waitpid(children[i]->pid, &status, 0) < 0 && errno == EINTR) {
      }
      finish(i, status);
    }
  }
  summary.interrupted = g_signal;
  return summary;
}

}  // namespace difflab
