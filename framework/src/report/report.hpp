#pragma once
// The report layer: the report's table model (report_table.cpp), its text formats (report.cpp)
// and the HTML page (report_html.cpp, with assets/*.css and *.js embedded at build time). It reads
// the store and never loads LibTorch (the `runner` front end links it alone).
//
// `runner report`: one row per run, the sweep axes as columns, then each metric per sampler;
// `runner report --by-nfe METRIC`: that metric by sampler family and number of model calls.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/run_store.hpp"

namespace difflab {

enum class ReportFormat { table, markdown, csv, json, html };

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
  /// html: the folder holding vega.min.js, vega-lite.min.js and vega-embed.min.js (and, for the
  /// distribution view, umap-js.min.js); "" looks where the build and the install put them (see
  /// find_chart_bundles).
  std::string chart_dir;
  /// --by-nfe METRIC: that metric by sampler family (rows) and NFE (columns) instead of the
  /// runs table (see make_nfe_pivot); html adds it to the page. "" for the runs table.
  std::string by_nfe;
};

ReportFormat parse_report_format(const std::string& name);  // "md" too; InputError when unknown
CheckpointChoice parse_checkpoint_choice(const std::string& name);  // InputError when unknown

// How a column's cells are printed: axes compactly, metrics and other measured numbers
// (`number`: a latent run's latent_scale) to 4 significant digits in tables; only metric columns
// take part in best marks, --checkpoint best and --by-nfe.
enum class ReportColumnKind { text, integer, axis, metric, number };

/// Whether a column's cells are numbers: right-aligned in tables, sorted as numbers in HTML.
inline bool report_numeric(ReportColumnKind kind) {
  return kind == ReportColumnKind::integer || kind == ReportColumnKind::metric ||
         kind == ReportColumnKind::number;
}

struct ReportColumn {
  std::string header;
  ReportColumnKind kind;
  std::string metric;  // metric columns: the metric's name ("mmd"), else ""
  bool higher_is_better = false;  // metric columns: as the metric's values declare
};

/// The comparison every format renders (see render_report for its rows and columns), with the
/// records it came from, read in one snapshot of the store.
struct ReportTable {
  std::vector<SweepRecord> sweeps;
  std::vector<RunRecord> runs;
  std::vector<CheckpointRecord> checkpoints;  // every one, or (final, best) those rows may show
  std::vector<MetricRecord> metrics;          // the values of `checkpoints`
  std::vector<std::pair<std::int64_t, LossRecord>> losses;  // html only: (run id, loss)
  std::vector<ArtifactRecord> artifacts;                     // html only
  std::vector<ReportColumn> columns;
  std::vector<std::vector<nlohmann::ordered_json>> rows;  // null = no value
  std::vector<std::size_t> row_run;           // per row: its run's index in `runs`
  std::vector<std::int64_t> row_checkpoint;   // per row: the checkpoint shown, 0 for none
  std::optional<std::size_t> best_key;        // --checkpoint best: the column that chose
  std::string footer;                         // "best checkpoint per run: lowest ..." or ""
};

/// Reads the store and builds the table: every checkpoint and metric value for `all` and html,
/// else only those of the checkpoints the rows show (found by index: RunStore::has_report_index).
/// InputError for a sweep name not in the store; no rows when the store has no runs (for it).
/// Latent diffusion: when a shown run trains an autoencoder (config "task": "autoencoder") or
/// diffuses one's latents (config "autoencoder": {"train_hash": ...}), the column `autoencoder`
/// says "(autoencoder)" for the former and "run N" for the latter (N: the grid index of the
/// autoencoder run of its sweep with that train_hash; "unknown (<hash>)" when none is), null for
/// other runs; and when a run recorded its latent_scale, a `latent_scale` column follows.
ReportTable make_report_table(const RunStore& store, const ReportOptions& options);

/// A cell as text: metric values to 4 significant digits, or every digit with `full`; "" for null.
std::string report_cell_text(const nlohmann::ordered_json& value, ReportColumnKind kind, bool full);

/// A sampler label without its `steps=N` option: the family whose members differ only in their
/// number of model calls. "ddim(steps=10)" -> "ddim", "heun(S_churn=1,steps=3)" ->
/// "heun(S_churn=1)", "ddpm" -> "ddpm". Labels list the user-set options as k=v joined by ','.
std::string sampler_family(const std::string& label);

/// One metric by sampler family and NFE (runner report --by-nfe): a row per shown row of the
/// runs table (its run and checkpoint, as --checkpoint chose), variant of the metric and
/// sampler family that has a value there; a column per NFE recorded with the metric, ascending.
struct NfePivot {
  std::string metric;
  bool higher_is_better = false;
  std::string caption;            // "mmd (lower is better) by sampler family and NFE (...)"
  std::vector<std::int64_t> nfe;  // the value columns' NFE, ascending
  /// The row labels: `sweep` (when several are shown), `run` (grid index), `epoch` (with
  /// --checkpoint all), `variant` (when the metric has several), `sampler` (the family); then
  /// one metric column per NFE, headed by the number.
  std::vector<ReportColumn> columns;
  std::size_t label_columns = 0;
  std::vector<std::vector<nlohmann::ordered_json>> rows;  // null = no value at that NFE
};

/// The pivot of `metric` over the rows of `table`. InputError when the table has no such metric
/// (with a did-you-mean and the metrics present), when it is a checkpoint-scope metric, or when
/// none of its shown values records an NFE (values recorded before schema version 4).
/// When two samplers of one family share an NFE, the value first recorded is shown.
NfePivot make_nfe_pivot(const ReportTable& table, const std::string& metric,
                        CheckpointChoice checkpoint);

/// Renders the comparison of the store's runs: rows by sweep then grid index; columns `sweep`
/// (all sweeps, when there are several), `run` (grid index), each axis, `autoencoder` and
/// `latent_scale` (only when a shown run is an autoencoder or latent diffusion run: see
/// make_report_table), `status`, `epoch`, one per metric ("test_loss", "mmd[ddpm]", "fid{variant}[ddpm]" when fid has several variants),
/// and `reason` last when a shown run failed. Metric columns: checkpoint-scope ones first, then
/// grouped by metric, metrics and samplers in the order they were first recorded. Missing values:
/// "-" in tables, empty in CSV, null in JSON. InputError for a sweep name not in the store; an
/// empty store gives "no runs recorded" (`[]` in JSON, nothing in CSV). With options.by_nfe, the
/// pivot instead: tables and CSV as the runs table is printed; JSON as
/// {"metric": "mmd", "better": "lower", "nfe": [10, 20], "rows": [{"run": 0, "sampler": "ddim",
/// "values": [0.5, 0.25]}]}, the values in the order of "nfe", null where none.
std::string render_report(const RunStore& store, const ReportOptions& options);

/// The self-contained HTML page of `table` (report_html.cpp): the sortable table, Vega-Lite
/// charts of the losses and of every metric per checkpoint, of each metric a run has at 2+ NFE
/// against NFE (log axis; with options.by_nfe, its pivot too), the distribution view (a UMAP,
/// computed in the page by the umap-js bundle, of each distribution_json artifact at a run's
/// shown checkpoint), each run's latest pictures, all inlined. Without chart bundles in
/// `chart_dir` the page says charts are unavailable; without umap-js there, that UMAP is.
std::string render_html(const ReportTable& table, const RunStore& store,
                        const ReportOptions& options);

/// The first folder holding the three chart bundles: `preferred` when given (and nothing else),
/// else $DIFFLAB_CHART_DIR, <runner>/../share/difflab/charts, the install prefix's and the build
/// tree's folder. "" when none has them. The umap-js bundle is looked for beside them.
std::string find_chart_bundles(const std::string& preferred);

}  // namespace difflab
