#pragma once
// The runner's subcommands: one file each (options, set-up, run), dispatched by main.cpp.
#include <string>
#include <vector>

#include "args.hpp"
#include "progress/progress.hpp"
#include "config/sweep_grid.hpp"

namespace difflab::app {

int sweep_command(const Args& args);     // runner sweep FILE ...
int run_command(const Args& args);       // runner run FILE --index I ...
int merge_command(const Args& args);     // runner merge --db PATH SHARD...
int validate_command(const Args& args);  // runner validate FILE
int report_command(const Args& args);    // runner report --db PATH ...
int plugins_command(const Args& args);   // runner plugins [--kind KIND]
int describe_command(const Args& args);  // runner describe [SECTION]

/// Options every command that loads plugins shares.
struct PluginArgs {
  std::vector<std::string> plugin_dirs;
  void add_to(po::options_description& desc);
  void load() const;  // the build's/installed plugins, --plugin-dir, DIFFLAB_PLUGIN_PATH
};

/// Sets the log level, BLAS threading and torch's thread count; logs what it chose.
void configure_runtime(int threads, bool verbose, bool quiet);

/// The live progress `--progress MODE` asks for (auto when empty, none with --quiet): null for
/// none; bars also take over the log, so that log lines print above the bars.
std::unique_ptr<SweepProgress> make_progress(const std::string& mode, double every, bool quiet);

/// Loads the sweep and validates every grid point (plugins created once each).
SweepGrid load_and_validate(const std::string& file, const std::vector<std::string>& overrides);

}  // namespace difflab::app
