#pragma once
// `runner report`: one row per run, the sweep axes as columns, then each metric per sampler.
#include <string>

#include "run_store.hpp"

namespace difflab {

enum class ReportFormat { table, markdown, csv, json };
enum class CheckpointChoice { final, best, all };

struct ReportOptions {
  std::string sweep;  // "" = every sweep in the store
  ReportFormat format = ReportFormat::table;
  CheckpointChoice checkpoint = CheckpointChoice::final;
};

ReportFormat parse_report_format(const std::string& name);          // InputError when unknown
CheckpointChoice parse_checkpoint_choice(const std::string& name);  // InputError when unknown

/// Renders the comparison of the store's runs.
std::string render_report(const RunStore& store, const ReportOptions& options);

}  // namespace difflab
