// runner merge --db PATH SHARD...: fold task databases (the shards of a parallel or Slurm sweep)
// into one, idempotently.
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "difflab/errors.hpp"
#include "store/store_merge.hpp"

namespace difflab::app {

int merge_command(const Args& args) {
  std::string db = "runs.sqlite";
  std::vector<std::string> shards;
  bool verbose = false, quiet = false;
  po::options_description desc("runner merge options");
  desc.add_options()("help,h", "show this help")
      ("db", po::value(&db), "the database to merge into (default runs.sqlite; created if missing)")
      ("shard", po::value(&shards)->composing(), "a shard database, or a folder searched for *.sqlite (repeatable)")
      ("verbose,v", po::bool_switch(&verbose), "log more")
      ("quiet,q", po::bool_switch(&quiet), "log only warnings and errors");
  po::positional_options_description positional;
  positional.add("shard", -1);
  po::variables_map vm;
  if (!parse_args(args, "runner merge --db PATH SHARD_OR_FOLDER...", desc, positional, vm)) return 0;
  configure_runtime(1, verbose, quiet);
  if (shards.empty()) throw InputError("no shard given: runner merge --db PATH SHARD_OR_FOLDER...");
  const auto files = find_shards(shards);
  RunStore store(db);
  const auto merged = merge_shards(files, store);
  spdlog::info("merged {} shard{} into {}: {} run{} with results, {} newly done or failed, {} done run{} kept",
               files.size(), files.size() == 1 ? "" : "s", db, merged.runs, merged.runs == 1 ? "" : "s",
               merged.finished, merged.kept, merged.kept == 1 ? "" : "s");
  return 0;
}

}  // namespace difflab::app
