#pragma once
// The report layer: the report's table model (report_table.cpp), its text formats (report.cpp)
// and the HTML page (report_html.cpp, with assets/*.css and *.js embedded at build time). It reads
// the store and never loads LibTorch (the `runner` front end links it alone).
//
// `runner report`: one row per run, the sweep axes as columns, then each metric per sampler
// (and per evaluation protocol, when values of one were measured under several:
// report_protocol.cpp);
// `runner report --by-nfe METRIC`: that metric by sampler family and number of model calls;
// `--over AXIS`: mean, spread and confidence interval of runs that differ only in AXIS
// (report_summary.cpp, with report_stats.cpp); `--compare AXIS=A,B`: paired differences.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/report_stats.hpp"
#include "store/run_store.hpp"

namespace difflab {

enum class ReportFormat { table, markdown, csv, json, html };

/// Which checkpoint's values a run's row shows.
/// - final: the run's last checkpoint that has metric values (else its last checkpoint).
/// - best: the key column is the first of wasserstein, fid, mmd, test_loss that the report has
///   (that metric's first column, whatever the protocols of its values), else the first metric
///   column; each run shows the checkpoint with the lowest finite value in it (the earliest on
///   ties) and all of that checkpoint's values, or its final checkpoint when it has no such
///   value. Tables name the key column.
/// - all: one row per (run, checkpoint).
/// - step, epoch: the run's checkpoint at step (epoch) ReportOptions::checkpoint_at, else its last
///   one before it, whether or not it has values; a run with none at or before it shows none.
enum class CheckpointChoice { final, best, all, step, epoch };

/// --compare AXIS=A,B: pairs of runs with AXIS = A and B that agree on every other axis.
struct ReportComparison {
  std::string axis;  // "" = no comparison
  std::string a, b;  // values as the table prints them; differences are b - a
};

struct ReportOptions {
  std::string sweep;  // "" = every sweep in the store
  ReportFormat format = ReportFormat::table;
  CheckpointChoice checkpoint = CheckpointChoice::final;
  std::int64_t checkpoint_at = 0;  // CheckpointChoice::step and epoch: that step or epoch
  /// html: the folder holding vega.min.js, vega-lite.min.js and vega-embed.min.js (and, for the
  /// distribution view, umap-js.min.js); "" looks where the build and the install put them (see
  /// find_chart_bundles).
  std::string chart_dir;
  /// --by-nfe METRIC: that metric by sampler family (rows) and NFE (columns) instead of the
  /// runs table (see make_nfe_pivot); html adds it to the page. "" for the runs table.
  std::string by_nfe;
  /// --over AXIS: the runs table's rows grouped by every other axis, a row per group with each
  /// metric's mean, standard deviation, n and interval (see make_over_table). "" for none.
  std::string over;
  /// --compare AXIS=A,B: the mean paired difference of each metric (see make_compare_table).
  ReportComparison compare;
  ReportInterval interval = ReportInterval::t;  // --interval, of --over and --compare
};

ReportFormat parse_report_format(const std::string& name);  // "md" too; InputError when unknown
CheckpointChoice parse_checkpoint_choice(const std::string& name);  // final|best|all; InputError

/// --checkpoint's value: final, best, all, step=N or epoch=N (N a whole number >= 0).
struct CheckpointSelection {
  CheckpointChoice choice = CheckpointChoice::final;
  std::int64_t at = 0;  // step, epoch: N
};
CheckpointSelection parse_checkpoint_selection(const std::string& text);  // InputError when bad

ReportInterval parse_report_interval(const std::string& name);  // t | bootstrap; InputError
/// --compare's value "AXIS=A,B" (two different values; commas inside brackets are a value's);
/// InputError naming the flag otherwise. Whether the values are there is checked on the table.
ReportComparison parse_report_comparison(const std::string& text);

/// InputError for options that do not go together: --over, --compare and --by-nfe with each
/// other, and --over or --compare with --checkpoint all (they take one checkpoint per run).
void check_report_options(const ReportOptions& options);

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
  /// Metric columns: the header without its protocol ("fid[ddpm]"): the columns that share it
  /// hold one metric, variant and sampler, each column the values of one protocol.
  std::string key{};
  std::string protocol{};  // metric columns: the canonical protocol_json its values share
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
  std::optional<std::size_t> best_key;        // --checkpoint best: the (first) column that chose
  std::string footer;                         // "best checkpoint per run: lowest ..." or ""
};

/// Reads the store and builds the table: every checkpoint and metric value for `all` and html,
/// else only those of the checkpoints the rows show (found by index: RunStore::has_report_index;
/// step and epoch choose among every checkpoint of the sweep, then read the chosen ones' values).
/// InputError for a sweep name not in the store; no rows when the store has no runs (for it).
/// Latent diffusion: when a shown run trains an autoencoder (config "task": "autoencoder") or
/// diffuses one's latents (config "autoencoder": {"train_hash": ...}), the column `autoencoder`
/// says "(autoencoder)" for the former and "run N" for the latter (N: the grid index of the
/// autoencoder run of its sweep with that train_hash; "unknown (<hash>)" when none is), null for
/// other runs; and when a run recorded its latent_scale, a `latent_scale` column follows.
ReportTable make_report_table(const RunStore& store, const ReportOptions& options);

/// A cell as text: metric values to 4 significant digits, or every digit with `full`; "" for null.
std::string report_cell_text(const nlohmann::ordered_json& value, ReportColumnKind kind, bool full);

/// A summary as tables print it, numbers to 4 significant digits: "0.1234 ± 0.0056 (n=3)" (t:
/// the mean and the interval's half-width), "0.1234 [0.12, 0.13] (n=3)" (bootstrap: the mean and
/// the interval), "0.1234 (n=1)" (no interval); "" when n = 0.
std::string summary_cell_text(const IntervalSummary& summary, ReportInterval interval);

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
  /// --checkpoint all), `variant` (when the metric has several), `sampler` (the family),
  /// `protocol` (when the values shown were measured under several protocols, their "nfe" aside:
  /// each protocol's rows apart, named as split runs-table columns are, "{samples=1000}"); then
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

/// --over AXIS: the rows of `table` (one per run) grouped by their sweep and every axis but AXIS,
/// in the order of each group's first row; per group and metric column (as the runs table
/// splits them: one protocol each) the summary of its finite values (report_stats.hpp).
struct OverTable {
  std::string axis;
  ReportInterval interval = ReportInterval::t;
  /// `sweep` (when several are shown), each other axis, `runs` (rows in the group); then the
  /// runs table's metric columns.
  std::vector<ReportColumn> columns;
  std::size_t label_columns = 0;
  std::vector<std::vector<nlohmann::ordered_json>> labels;  // per row: its label cells
  std::vector<std::vector<IntervalSummary>> values;         // per row: one per metric column
  std::vector<std::vector<std::size_t>> members;  // per row: its rows of the runs table
  std::string caption;  // what the cells hold and the interval, then table.footer
};

/// The groups of `table` over options.over. InputError for an axis the shown runs do not have
/// (with a did-you-mean and the axes there) and for --checkpoint all; no rows for an empty table.
OverTable make_over_table(const ReportTable& table, const ReportOptions& options);

/// --compare AXIS=A,B: the rows of `table` with AXIS = A and B paired when they agree on their
/// sweep and every other axis (seeds too); per metric column, the summary of the differences
/// B - A of the pairs where both values are finite (n: those pairs).
struct CompareTable {
  ReportComparison compare;
  ReportInterval interval = ReportInterval::t;
  struct Row {
    /// The runs table's metric column; a refused metric's first column, headed by its key.
    ReportColumn column;
    IntervalSummary difference;
    /// Why the metric is not compared: a pair's values were measured under different protocols
    /// ("--compare: fid[ddpm] of run 3 and run 7 were measured under different protocols
    /// (samples 1000 vs 500)", the first such pair); "" when it is compared.
    std::string refused;
  };
  std::vector<Row> rows;  // the metric columns in the runs table's order
  std::size_t pairs = 0;
  std::string caption;  // the difference, the interval, the mark, each refusal on its line
};

/// The pairs of `table` over options.compare. InputError for an axis not there, a value that no
/// shown run has on it (with a did-you-mean and the values there), no pairs, --checkpoint all.
CompareTable make_compare_table(const ReportTable& table, const ReportOptions& options);

/// Renders the comparison of the store's runs: rows by sweep then grid index; columns `sweep`
/// (all sweeps, when there are several), `run` (grid index), each axis, `autoencoder` and
/// `latent_scale` (only when a shown run is an autoencoder or latent diffusion run: see
/// make_report_table), `status`, then the `step`, `epoch` and `images` (training images seen;
/// null when not recorded) of the checkpoint shown, one per metric ("test_loss", "mmd[ddpm]",
/// "fid{variant}[ddpm]" when fid has several variants; when the values shown of one were measured
/// under several protocols, one column per protocol, named by the keys that differ:
/// "fid[ddpm]{samples=1000}", "fid[ddpm]{unrecorded}" for values without one), and `reason` last
/// when a shown run failed. Metric columns: checkpoint-scope ones first, then grouped by metric,
/// metrics and samplers in the order they were first recorded, protocols in the order the rows
/// show them. Missing values: "-" in tables, empty in CSV, null in JSON. InputError for a sweep
/// name not in the store and for options check_report_options refuses; an empty store gives "no
/// runs recorded" (`[]` in JSON, nothing in CSV). With options.by_nfe, the pivot instead: tables
/// and CSV as the runs table is printed; JSON as {"metric": "mmd", "better": "lower", "nfe": [10,
/// 20], "rows": [{"run": 0, "sampler": "ddim", "values": [0.5, 0.25]}]}, the values in the order
/// of "nfe", null where none.
/// With options.over, the OverTable instead: tables and markdown with cells "0.1234 ± 0.0056
/// (n=3)" (Student t), "0.1234 [0.12, 0.13] (n=3)" (bootstrap) or "0.1234 (n=1)" and its caption
/// after a blank line; CSV with the label columns, then per metric column H the columns H.mean,
/// H.std, H.n, H.ci_low, H.ci_high (empty where not defined); JSON as {"over": "seed",
/// "interval": "t", "confidence": 0.95, "rows": [{"schedule.plugin": "linear", "runs": 3,
/// "mmd[ddpm]": {"mean": m, "std": s, "n": 3, "ci_low": l, "ci_high": h}}]}, null where not
/// defined (std with n < 2, ci_low and ci_high with n < 2, everything with n = 0).
/// With options.compare, the CompareTable instead: tables and markdown with a row per metric
/// column, `metric` and `difference (B - A)`, cells as --over's with " *" where the interval
/// excludes 0 and "refused: different protocols" for a refused metric, and the caption; CSV
/// `metric,mean,std,n,ci_low,ci_high,excludes_zero,refused`; JSON as {"compare": "seed", "a":
/// "0", "b": "1", "difference": "1 - 0", "interval": "t", "confidence": 0.95, "pairs": 3,
/// "metrics": [{"metric": "mmd[ddpm]", "mean": m, "std": s, "n": 3, "ci_low": l, "ci_high": h,
/// "excludes_zero": false, "refused": null}]}.
std::string render_report(const RunStore& store, const ReportOptions& options);

/// The self-contained HTML page of `table` (report_html.cpp): the sortable table, Vega-Lite
/// charts of the losses and of every metric per checkpoint, of each metric a run has at 2+ NFE
/// against NFE (log axis; with options.by_nfe, its pivot too), the distribution view (a UMAP,
/// computed in the page by the umap-js bundle, of each distribution_json artifact at a run's
/// shown checkpoint), each run's latest pictures, all inlined. Without chart bundles in
/// `chart_dir` the page says charts are unavailable; without umap-js there, that UMAP is.
/// With options.over the table has the OverTable's rows, and the metric charts a line per group
/// (its mean at each epoch) in a band (its interval); with options.compare the CompareTable
/// comes before the runs table.
std::string render_html(const ReportTable& table, const RunStore& store,
                        const ReportOptions& options);

/// The first folder holding the three chart bundles: `preferred` when given (and nothing else),
/// else $DIFFLAB_CHART_DIR, <runner>/../share/difflab/charts, the install prefix's and the build
/// tree's folder. "" when none has them. The umap-js bundle is looked for beside them.
std::string find_chart_bundles(const std::string& preferred);

}  // namespace difflab
