#pragma once
// `runner report`: one row per run, the sweep axes as columns, then each metric per sampler.
#include <string>

#include "run_store.hpp"

namespace difflab {

enum class ReportFormat { table, markdown, csv, json };

/// Which checkpoint's values a run's row shows.
/// - final: the run's last checkpoint that has metric values (else its last checkpoint).
/// - best: the key column is the first of wasserstein, fid, mmd, test_loss that the report has
///   (that metric's first column), else the first metric column; each run shows the checkpoint
///   with the lowest finite value in it (the earliest on ties) and all of that checkpoint's
///   values, or its final checkpoint when it has no such value. Tables name the key column.
/// - all: one row per (run, checkpoint).
enum class CheckpointChoice { final, best, all };

struct ReportOptions {
  std::string sweep;  // "" = every sweep in the store
  ReportFormat format = ReportFormat::table;
  CheckpointChoice checkpoint = CheckpointChoice::final;
};

ReportFormat parse_report_format(const std::string& name);  // "md" too; InputError when unknown
CheckpointChoice parse_checkpoint_choice(const std::string& name);  // InputError when unknown

/// Renders the comparison of the store's runs: rows by sweep then grid index; columns `sweep`
/// (all sweeps, when there are several), `run` (grid index), each axis, `status`, `epoch`, one
/// per metric ("test_loss", "mmd[ddpm]", "fid{variant}[ddpm]" when fid has several variants),
/// and `reason` last when a shown run failed. Metric columns: checkpoint-scope ones first, then
/// grouped by metric, metrics and samplers in the order they were first recorded. Missing values:
/// "-" in tables, empty in CSV, null in JSON. InputError for a sweep name not in the store; an
/// empty store gives "no runs recorded" (`[]` in JSON, nothing in CSV). Four queries in all.
std::string render_report(const RunStore& store, const ReportOptions& options);

}  // namespace difflab
