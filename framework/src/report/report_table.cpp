// make_report_table: the rows and columns every report format renders, read from the store in
// one snapshot; the formats themselves are in report.cpp (text) and report_html.cpp (HTML).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "api/did_you_mean.hpp"
#include "difflab/errors.hpp"
#include "report/report.hpp"
#include "report/report_protocol.hpp"

namespace difflab {
namespace {

using Json = nlohmann::ordered_json;  // keeps axes and row keys in first-seen order
using ColumnKind = ReportColumnKind;

// The key metric of CheckpointChoice::best, in order of preference; else the first column.
const std::vector<std::string> kBestMetrics = {"wasserstein", "fid", "mmd", "test_loss"};

// A metric's header: "mmd", "mmd[ddpm]", or "fid{inception}[ddpm]" when fid has 2+ variants.
std::string metric_header(const MetricKey& key, bool show_variant) {
  std::string header = key.metric;
  if (show_variant && !key.variant.empty()) header += "{" + key.variant + "}";
  if (!key.sampler.empty()) header += "[" + key.sampler + "]";
  return header;
}

// Metric columns: checkpoint-scope ones first, then grouped by metric; metrics, variants and
// samplers each in the order they were first recorded (`recorded` is in that order).
std::vector<MetricKey> column_order(const std::vector<MetricKey>& recorded) {
  std::map<std::string, std::size_t> metric_rank, sampler_rank;
  std::map<std::pair<std::string, std::string>, std::size_t> variant_rank;
  for (const auto& k : recorded) {
    metric_rank.emplace(k.metric, metric_rank.size());
    variant_rank.emplace(std::make_pair(k.metric, k.variant), variant_rank.size());
    sampler_rank.emplace(k.sampler, sampler_rank.size());
  }
  std::vector<MetricKey> keys = recorded;
  std::sort(keys.begin(), keys.end(), [&](const MetricKey& a, const MetricKey& b) {
    auto rank = [&](const MetricKey& k) {
      return std::make_tuple(!k.sampler.empty(), metric_rank[k.metric],
                             variant_rank[{k.metric, k.variant}], sampler_rank[k.sampler]);
    };
    return rank(a) < rank(b);
  });
  return keys;
}

// Best checkpoint rule: the key column is the first of wasserstein, fid, mmd, test_loss that
// the report has (its first sampler's column), else the first metric column; per run, the
// checkpoint with the best finite value there (lowest, or highest where the metric declares
// higher is better; the earliest on ties); a run with no such
// value shows its final checkpoint instead.
std::optional<std::size_t> best_key_column(const std::vector<MetricKey>& columns) {
  for (const auto& name : kBestMetrics) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].metric == name) return i;
    }
  }
  if (!columns.empty()) return 0;
  return std::nullopt;
}

// The `autoencoder` cell of each run: "(autoencoder)" for a run that trains one, "run N" for a
// latent diffusion run (N: the grid index of the autoencoder run of its sweep whose train_hash
// its config names; the first when several share it), null for other runs. Empty when no run is
// either, so reports of other sweeps keep their columns.
std::vector<Json> autoencoder_cells(const std::vector<RunRecord>& runs) {
  std::vector<Json> cells(runs.size());
  std::vector<std::string> used(runs.size());  // a latent run's autoencoder train_hash
  std::map<std::pair<std::int64_t, std::string>, std::int64_t> trained;  // (sweep, hash) -> index
  bool any = false;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    // Most runs are neither: skip parsing their config (a report may show 10,000 runs).
    if (runs[i].config_json.find("\"autoencoder\"") == std::string::npos) continue;
    const auto config = Json::parse(runs[i].config_json, nullptr, false);
    if (!config.is_object()) continue;
    const auto task = config.find("task");
    const auto autoencoder = config.find("autoencoder");
    if (task != config.end() && *task == "autoencoder") {
      cells[i] = "(autoencoder)";
      trained.emplace(std::make_pair(runs[i].sweep_id, runs[i].train_hash), runs[i].grid_index);
      any = true;
    } else if (autoencoder != config.end() && autoencoder->is_object()) {
      const auto hash = autoencoder->find("train_hash");
      if (hash == autoencoder->end() || !hash->is_string()) continue;
      used[i] = hash->get<std::string>();
      any = true;
    }
  }
  if (!any) return {};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (used[i].empty()) continue;
    const auto it = trained.find({runs[i].sweep_id, used[i]});
    cells[i] = it != trained.end() ? "run " + std::to_string(it->second)
                                   : "unknown (" + used[i] + ")";
  }
  return cells;
}

}  // namespace

ReportTable make_report_table(const RunStore& store, const ReportOptions& options) {
  // A few queries whatever the store's size: sweeps, runs, then every checkpoint and metric value
  // (all, html: its charts show them) or, given the store's report index, only those of the
  // checkpoint each run shows; html adds the losses and artifacts.
  ReportTable table;
  table.sweeps = store.sweeps();
  const auto& sweeps = table.sweeps;
  std::unordered_map<std::int64_t, std::string> sweep_names;
  std::vector<std::string> names;
  for (const auto& s : sweeps) {
    sweep_names[s.id] = s.name;
    names.push_back(s.name);
  }
  // An empty store is not an error (nothing ran yet), a mistyped sweep name is.
  if (!options.sweep.empty() && !sweep_names.empty() &&
      std::find(names.begin(), names.end(), options.sweep) == names.end()) {
    std::string message = "no sweep named '" + options.sweep + "' in " + store.path();
    if (auto guess = did_you_mean(options.sweep, names); !guess.empty()) {
      message += " (did you mean '" + guess + "'?)";
    } else {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      message += " (sweeps: " + all + ")";
    }
    throw InputError(message);
  }

  auto& runs = table.runs;
  auto& checkpoints = table.checkpoints;
  auto& metrics = table.metrics;
  std::vector<MetricKey> recorded_keys;  // in the order each was first recorded
  // --checkpoint step=N, epoch=N: the point of a checkpoint it compares with N.
  const bool at_point = options.checkpoint == CheckpointChoice::step ||
                        options.checkpoint == CheckpointChoice::epoch;
  auto point_of = [&](const CheckpointRecord& c) {
    return options.checkpoint == CheckpointChoice::epoch ? c.epoch : c.step;
  };
  store.snapshot([&] {  // one consistent view while a sweep goes on writing
    runs = store.runs(options.sweep);
    // One checkpoint per run, without html's charts of every value: the store chooses the
    // candidates by index, and the rules below pick from them what they would from them all.
    const bool one_per_run = options.checkpoint != CheckpointChoice::all &&
                             options.format != ReportFormat::html && store.has_report_index();
    if (one_per_run) {
      recorded_keys = store.metric_keys(options.sweep);
      std::vector<std::int64_t> ids;
      if (at_point) {
        // Every checkpoint is one small row: choose among them here, read only their values.
        const auto every = store.sweep_checkpoints(options.sweep);  // by run, then step
        for (std::size_t i = 0; i < every.size();) {
          std::size_t end = i;
          const CheckpointRecord* chosen = nullptr;
          for (; end < every.size() && every[end].run_id == every[i].run_id; ++end) {
            if (point_of(every[end]) <= options.checkpoint_at) chosen = &every[end];
          }
          if (chosen) {
            ids.push_back(chosen->id);
            checkpoints.push_back(*chosen);
          }
          i = end;
        }
      } else if (options.checkpoint == CheckpointChoice::best) {
        const auto final_ids = store.final_checkpoints(options.sweep);
        const auto columns = column_order(recorded_keys);
        const auto key = best_key_column(columns);
        const auto best_ids = key ? store.best_checkpoints(columns[*key])
                                  : std::vector<std::pair<std::int64_t, std::int64_t>>{};
        std::unordered_set<std::int64_t> shown_runs, with_best;
        for (const auto& r : runs) shown_runs.insert(r.id);
        for (const auto& [run, checkpoint] : best_ids) {
          if (!shown_runs.count(run)) continue;  // another sweep's
          with_best.insert(run);
          ids.push_back(checkpoint);
        }
        for (const auto& [run, checkpoint] : final_ids) {
          if (!with_best.count(run)) ids.push_back(checkpoint);
        }
      } else {
        for (const auto& [run, checkpoint] : store.final_checkpoints(options.sweep))
          ids.push_back(checkpoint);
      }
      if (!at_point) checkpoints = store.checkpoints_with_ids(ids);
      metrics = store.metrics_of_checkpoints(ids);
    } else {
      checkpoints = store.sweep_checkpoints(options.sweep);
      metrics = store.sweep_metrics(options.sweep);
      std::set<MetricKey> seen;
      for (const auto& m : metrics) {
        if (seen.insert({m.metric, m.variant, m.sampler}).second)
          recorded_keys.push_back({m.metric, m.variant, m.sampler, m.better});
      }
    }
    if (options.format == ReportFormat::html) {
      table.losses = store.sweep_losses(options.sweep);
      table.artifacts = store.sweep_artifacts(options.sweep);
    }
  });
  if (runs.empty()) return table;

  // Index: run -> its checkpoints by step; checkpoint -> its metric values.
  std::unordered_map<std::int64_t, std::size_t> run_index;
  for (std::size_t i = 0; i < runs.size(); ++i) run_index[runs[i].id] = i;
  std::vector<std::vector<const CheckpointRecord*>> run_checkpoints(runs.size());
  for (const auto& c : checkpoints) {
    // Rows written between our queries by a running sweep are skipped, not an error.
    if (auto it = run_index.find(c.run_id); it != run_index.end())
      run_checkpoints[it->second].push_back(&c);
  }
  std::unordered_map<std::int64_t, std::vector<std::size_t>> checkpoint_metrics;  // indexes
  for (std::size_t i = 0; i < metrics.size(); ++i)
    checkpoint_metrics[metrics[i].checkpoint_id].push_back(i);

  const auto metric_keys = column_order(recorded_keys);
  std::map<std::string, std::set<std::string>> variants_of;
  for (const auto& k : metric_keys) variants_of[k.metric].insert(k.variant);
  // Each value's column, looked up once (by views of its strings: `all` has millions of values).
  using KeyView = std::tuple<std::string_view, std::string_view, std::string_view>;
  std::map<KeyView, std::size_t> metric_column;
  for (std::size_t i = 0; i < metric_keys.size(); ++i)
    metric_column[{metric_keys[i].metric, metric_keys[i].variant, metric_keys[i].sampler}] = i;
  std::vector<std::size_t> column_of(metrics.size(), metric_keys.size());  // size(): none
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const auto it = metric_column.find({metrics[i].metric, metrics[i].variant, metrics[i].sampler});
    if (it != metric_column.end()) column_of[i] = it->second;
  }
  const auto key_column = best_key_column(metric_keys);

  // Per key column, the index in `metrics` of a checkpoint's value there (metrics.size(): none).
  auto records_of = [&](const CheckpointRecord* c) {
    std::vector<std::size_t> records(metric_keys.size(), metrics.size());
    if (!c) return records;
    if (auto it = checkpoint_metrics.find(c->id); it != checkpoint_metrics.end()) {
      for (const auto i : it->second) {
        if (column_of[i] < records.size()) records[column_of[i]] = i;
      }
    }
    return records;
  };
  // Final: the last checkpoint with metrics, else the last one (how far an unevaluated run got).
  auto final_checkpoint =
      [&](const std::vector<const CheckpointRecord*>& list) -> const CheckpointRecord* {
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
      if (checkpoint_metrics.count((*it)->id)) return *it;
    }
    return list.empty() ? nullptr : list.back();
  };
  auto best_checkpoint =
      [&](const std::vector<const CheckpointRecord*>& list) -> const CheckpointRecord* {
    const CheckpointRecord* best = nullptr;
    double best_value = 0;
    if (key_column) {
      for (const auto* c : list) {
        const auto record = records_of(c)[*key_column];
        if (record == metrics.size() || !std::isfinite(metrics[record].value)) continue;
        const double value = metrics[record].value;
        if (!best || improves(metric_keys[*key_column].better == "higher", value, best_value)) {
          best = c;
          best_value = value;
        }
      }
    }
    return best ? best : final_checkpoint(list);
  };
  // Step, epoch: the last checkpoint (by step) at or before the point asked for.
  auto checkpoint_at =
      [&](const std::vector<const CheckpointRecord*>& list) -> const CheckpointRecord* {
    const CheckpointRecord* chosen = nullptr;
    for (const auto* c : list) {
      if (point_of(*c) <= options.checkpoint_at) chosen = c;
    }
    return chosen;
  };

  struct Shown {
    const RunRecord* run;
    const CheckpointRecord* checkpoint;
  };
  std::vector<Shown> shown;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& list = run_checkpoints[i];
    switch (options.checkpoint) {
      case CheckpointChoice::final:
        shown.push_back({&runs[i], final_checkpoint(list)});
        break;
      case CheckpointChoice::best:
        shown.push_back({&runs[i], best_checkpoint(list)});
        break;
      case CheckpointChoice::step:
      case CheckpointChoice::epoch:
        shown.push_back({&runs[i], checkpoint_at(list)});
        break;
      case CheckpointChoice::all:
        if (list.empty()) shown.push_back({&runs[i], nullptr});
        for (const auto* c : list) shown.push_back({&runs[i], c});
        break;
    }
  }

  // Protocols: per key column, those of the values shown, in the order the rows show them (each
  // distinct protocol_json text is made canonical once: `all` shows millions of values).
  std::vector<std::vector<std::size_t>> shown_records;  // per shown row: records_of
  std::unordered_map<std::string_view, std::size_t> protocol_id;  // protocol_json -> canonical
  std::vector<std::string> canonical;                             // by id, distinct
  std::vector<std::size_t> text_protocol;                          // by text id
  std::vector<std::vector<std::size_t>> key_protocols(metric_keys.size());  // canonical ids
  auto protocol_of = [&](std::size_t record) {
    const std::string_view text = metrics[record].protocol_json;
    auto it = protocol_id.find(text);
    if (it == protocol_id.end()) {
      const auto form = canonical_protocol(metrics[record].protocol_json);
      auto same = std::find(canonical.begin(), canonical.end(), form);
      if (same == canonical.end()) same = canonical.insert(canonical.end(), form);
      text_protocol.push_back(static_cast<std::size_t>(same - canonical.begin()));
      it = protocol_id.emplace(text, text_protocol.size() - 1).first;
    }
    return text_protocol[it->second];
  };
  for (const auto& s : shown) {
    auto& records = shown_records.emplace_back(records_of(s.checkpoint));
    for (std::size_t k = 0; k < records.size(); ++k) {
      if (records[k] == metrics.size()) continue;
      auto& seen = key_protocols[k];
      const auto p = protocol_of(records[k]);
      if (std::find(seen.begin(), seen.end(), p) == seen.end()) seen.push_back(p);
    }
  }

  // Axes: the union of every run's axis keys, in first-seen order.
  std::vector<Json> axes(runs.size());
  std::vector<std::string> axis_names;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    axes[i] = Json::parse(runs[i].axes_json, nullptr, false);
    if (!axes[i].is_object()) axes[i] = Json::object();
    for (const auto& item : axes[i].items()) {
      if (std::find(axis_names.begin(), axis_names.end(), item.key()) == axis_names.end()) {
        axis_names.push_back(item.key());
      }
    }
  }
  std::set<std::int64_t> shown_sweeps;
  bool any_failed = false, any_latent_scale = false;
  for (const auto& r : runs) {
    shown_sweeps.insert(r.sweep_id);
    any_failed = any_failed || r.status == RunStatus::failed;
    any_latent_scale = any_latent_scale || std::isfinite(r.latent_scale);
  }
  const auto autoencoder = autoencoder_cells(runs);
  const bool sweep_column = options.sweep.empty() && shown_sweeps.size() > 1;

  auto& columns = table.columns;
  if (sweep_column) columns.push_back({"sweep", ColumnKind::text, ""});
  columns.push_back({"run", ColumnKind::integer, ""});
  for (const auto& name : axis_names) columns.push_back({name, ColumnKind::axis, ""});
  if (!autoencoder.empty()) columns.push_back({"autoencoder", ColumnKind::text, ""});
  if (any_latent_scale) columns.push_back({"latent_scale", ColumnKind::number, ""});
  columns.push_back({"status", ColumnKind::text, ""});
  columns.push_back({"step", ColumnKind::integer, ""});
  columns.push_back({"epoch", ColumnKind::integer, ""});
  columns.push_back({"images", ColumnKind::integer, ""});
  const std::size_t first_metric_column = columns.size();
  // Per key column, its columns' indexes by the position of their protocol in key_protocols.
  std::vector<std::vector<std::size_t>> protocol_columns(metric_keys.size());
  std::vector<std::size_t> key_first_column(metric_keys.size());
  for (std::size_t k = 0; k < metric_keys.size(); ++k) {
    const auto& key = metric_keys[k];
    const auto header = metric_header(key, variants_of[key.metric].size() > 1);
    std::vector<std::string> protocols;
    for (const auto p : key_protocols[k]) protocols.push_back(canonical[p]);
    if (protocols.empty()) protocols.push_back("{}");  // no value shown: one column
    const auto labels = protocol_labels(protocols);
    key_first_column[k] = columns.size();
    for (std::size_t p = 0; p < protocols.size(); ++p) {
      protocol_columns[k].push_back(columns.size());
      columns.push_back({header + labels[p], ColumnKind::metric, key.metric,
                         key.better == "higher", header, protocols[p]});
    }
  }
  const std::size_t metric_columns = columns.size() - first_metric_column;
  if (any_failed) columns.push_back({"reason", ColumnKind::text, ""});  // last: long free text

  auto& rows = table.rows;
  for (std::size_t r = 0; r < shown.size(); ++r) {
    const auto& s = shown[r];
    const auto& run = *s.run;
    table.row_run.push_back(run_index[run.id]);
    table.row_checkpoint.push_back(s.checkpoint ? s.checkpoint->id : 0);
    auto& row = rows.emplace_back();
    if (sweep_column) row.emplace_back(sweep_names[run.sweep_id]);
    row.emplace_back(run.grid_index);
    const auto& run_axes = axes[run_index[run.id]];
    for (const auto& name : axis_names)
      row.push_back(run_axes.contains(name) ? run_axes[name] : Json());
    if (!autoencoder.empty()) row.push_back(autoencoder[run_index[run.id]]);
    if (any_latent_scale)
      row.push_back(std::isfinite(run.latent_scale) ? Json(run.latent_scale) : Json());
    row.emplace_back(run_status_name(run.status));
    const auto* c = s.checkpoint;
    row.push_back(c ? Json(c->step) : Json());
    row.push_back(c ? Json(c->epoch) : Json());
    row.push_back(c && c->images > 0 ? Json(c->images) : Json());
    row.resize(row.size() + metric_columns);  // null: no value
    const auto& records = shown_records[r];
    for (std::size_t k = 0; k < records.size(); ++k) {
      if (records[k] == metrics.size()) continue;
      const auto& seen = key_protocols[k];
      const auto p = static_cast<std::size_t>(
          std::find(seen.begin(), seen.end(), protocol_of(records[k])) - seen.begin());
      row[protocol_columns[k][p]] = metrics[records[k]].value;
    }
    if (any_failed) row.push_back(run.status == RunStatus::failed ? Json(run.reason) : Json());
  }

  // Tables say which column chose the best checkpoints; CSV and JSON stay pure data.
  if (options.checkpoint == CheckpointChoice::best && key_column) {
    table.best_key = key_first_column[*key_column];
    table.footer = std::string("best checkpoint per run: ") +
                   (columns[*table.best_key].higher_is_better ? "highest " : "lowest ") +
                   columns[*table.best_key].key + "\n";
  }
  return table;
}

std::string sampler_family(const std::string& label) {
  const auto open = label.find('(');
  if (open == std::string::npos || label.back() != ')') return label;
  // Options are split at commas outside brackets ("sigmas=[1, 2]"); a piece without "key=" is
  // part of the option before it (a string value holding a comma).
  std::vector<std::string> options;
  int depth = 0;
  std::string piece;
  auto finish_piece = [&] {
    const auto eq = piece.find('=');
    const bool starts_option =
        eq != std::string::npos && eq > 0 &&
        std::all_of(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(eq),
                    [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (starts_option || options.empty()) {
      options.push_back(piece);
    } else {
      options.back() += "," + piece;
    }
    piece.clear();
  };
  for (std::size_t i = open + 1; i + 1 < label.size(); ++i) {
    const char c = label[i];
    if (c == '[' || c == '(') ++depth;
    if (c == ']' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      finish_piece();
    } else {
      piece += c;
    }
  }
  finish_piece();
  std::string kept;
  for (const auto& option : options) {
    if (option.rfind("steps=", 0) == 0) continue;
    kept += (kept.empty() ? "" : ",") + option;
  }
  const auto name = label.substr(0, open);
  return kept.empty() ? name : name + "(" + kept + ")";
}

NfePivot make_nfe_pivot(const ReportTable& table, const std::string& metric,
                        CheckpointChoice checkpoint) {
  NfePivot pivot;
  pivot.metric = metric;
  // The metrics present, in the runs table's column order; which of them have samplers.
  std::vector<std::string> present, with_sampler;
  for (const auto& c : table.columns) {
    if (c.kind != ColumnKind::metric) continue;
    if (std::find(present.begin(), present.end(), c.metric) == present.end())
      present.push_back(c.metric);
    if (c.metric == metric) pivot.higher_is_better = c.higher_is_better;
  }
  for (const auto& m : table.metrics) {
    if (!m.sampler.empty() &&
        std::find(with_sampler.begin(), with_sampler.end(), m.metric) == with_sampler.end())
      with_sampler.push_back(m.metric);
  }
  auto listed = [](const std::vector<std::string>& names) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    return all.empty() ? std::string("none") : all;
  };
  if (table.runs.empty()) return pivot;  // nothing recorded yet: an empty pivot, not an error
  if (std::find(present.begin(), present.end(), metric) == present.end()) {
    std::string message = "--by-nfe: no metric '" + metric + "' recorded";
    if (auto guess = did_you_mean(metric, present); !guess.empty()) {
      message += " (did you mean '" + guess + "'?)";
    }
    throw InputError(message + "; metrics recorded: " + listed(present));
  }

  // Ranks by first record, so rows list variants, families and protocols in the order they were
  // measured. A protocol here leaves out its "nfe": that is what the columns tell apart.
  std::map<std::string, std::size_t> variant_rank, family_rank;
  std::unordered_map<std::string, std::string> family_of;  // sampler label -> family
  std::unordered_map<std::string, std::size_t> protocol_rank_of;  // protocol_json -> rank
  std::vector<std::string> protocols;                              // by rank
  // By checkpoint: its values and the rank of each one's protocol.
  std::unordered_map<std::int64_t, std::vector<std::pair<const MetricRecord*, std::size_t>>>
      values_of;
  bool any_sampler = false, any_without = false;
  for (const auto& m : table.metrics) {
    if (m.metric != metric) continue;
    any_without = any_without || m.sampler.empty();
    if (m.sampler.empty()) continue;
    any_sampler = true;
    if (m.nfe <= 0) continue;  // recorded before the store kept NFE
    auto family = family_of.find(m.sampler);
    if (family == family_of.end())
      family = family_of.emplace(m.sampler, sampler_family(m.sampler)).first;
    variant_rank.emplace(m.variant, variant_rank.size());
    family_rank.emplace(family->second, family_rank.size());
    auto protocol = protocol_rank_of.find(m.protocol_json);
    if (protocol == protocol_rank_of.end()) {
      const auto form = protocol_without(canonical_protocol(m.protocol_json), "nfe");
      auto same = std::find(protocols.begin(), protocols.end(), form);
      if (same == protocols.end()) same = protocols.insert(protocols.end(), form);
      protocol = protocol_rank_of
                     .emplace(m.protocol_json, static_cast<std::size_t>(same - protocols.begin()))
                     .first;
    }
    values_of[m.checkpoint_id].emplace_back(&m, protocol->second);
  }
  if (!any_sampler && any_without) {
    throw InputError("--by-nfe: '" + metric +
                     "' is measured without a sampler, so it has no NFE; " +
                     "metrics with samplers: " + listed(with_sampler));
  }

  // One entry per (shown row, variant, family, protocol): the values by NFE, the first recorded
  // kept; values measured under different protocols never share a row.
  struct Entry {
    std::size_t row;
    const std::string* variant;
    const std::string* family;
    std::size_t protocol;
    std::map<std::int64_t, double> values;
  };
  std::vector<Entry> entries;
  std::set<std::int64_t> nfe;
  std::set<std::string> variants;
  std::set<std::size_t> shown_protocols;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const auto it = values_of.find(table.row_checkpoint[r]);
    if (it == values_of.end()) continue;
    std::map<std::tuple<std::size_t, std::size_t, std::size_t>, Entry> by_key;
    for (const auto& [m, protocol] : it->second) {
      const auto& family = family_of[m->sampler];
      auto& entry =
          by_key
              .try_emplace({variant_rank[m->variant], family_rank[family], protocol},
                           Entry{r, &m->variant, &family, protocol, {}})
              .first->second;
      entry.values.emplace(m->nfe, m->value);
      nfe.insert(m->nfe);
      variants.insert(m->variant);
      shown_protocols.insert(protocol);
    }
    for (auto& [key, entry] : by_key) entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    throw InputError("--by-nfe: no value of '" + metric +
                     "' at the checkpoints shown records its " +
                     "sampler's NFE (values recorded before store schema version 4 do not)");
  }
  pivot.nfe.assign(nfe.begin(), nfe.end());
  pivot.caption = metric + (pivot.higher_is_better ? " (higher is better)" : " (lower is better)") +
                  " by sampler family and NFE (model calls per sample)";

  std::set<std::int64_t> shown_sweeps;
  for (const auto& run : table.runs) shown_sweeps.insert(run.sweep_id);
  std::unordered_map<std::int64_t, std::string> sweep_names;
  for (const auto& s : table.sweeps) sweep_names[s.id] = s.name;
  const bool sweep_column = shown_sweeps.size() > 1;
  const bool epoch_column = checkpoint == CheckpointChoice::all;
  const bool variant_column = variants.size() > 1;
  // Several protocols: a column names each row's by the keys that differ ("{samples=1000}").
  const bool protocol_column = shown_protocols.size() > 1;
  std::map<std::size_t, std::string> protocol_label;
  if (protocol_column) {
    std::vector<std::string> shown;
    for (const auto p : shown_protocols) shown.push_back(protocols[p]);
    const auto labels = protocol_labels(shown);
    std::size_t i = 0;
    for (const auto p : shown_protocols) protocol_label[p] = labels[i++];
  }
  auto& columns = pivot.columns;
  if (sweep_column) columns.push_back({"sweep", ColumnKind::text, ""});
  columns.push_back({"run", ColumnKind::integer, ""});
  if (epoch_column) columns.push_back({"epoch", ColumnKind::integer, ""});
  if (variant_column) columns.push_back({"variant", ColumnKind::text, ""});
  columns.push_back({"sampler", ColumnKind::text, ""});
  if (protocol_column) columns.push_back({"protocol", ColumnKind::text, ""});
  pivot.label_columns = columns.size();
  for (const auto n : pivot.nfe) {
    columns.push_back({std::to_string(n), ColumnKind::metric, metric, pivot.higher_is_better});
  }

  std::unordered_map<std::int64_t, std::int64_t> epoch_of;
  for (const auto& c : table.checkpoints) epoch_of[c.id] = c.epoch;
  for (const auto& entry : entries) {
    const auto& run = table.runs[table.row_run[entry.row]];
    auto& row = pivot.rows.emplace_back();
    if (sweep_column) row.emplace_back(sweep_names[run.sweep_id]);
    row.emplace_back(run.grid_index);
    if (epoch_column) row.emplace_back(epoch_of[table.row_checkpoint[entry.row]]);
    if (variant_column) row.emplace_back(*entry.variant);
    row.emplace_back(*entry.family);
    if (protocol_column) row.emplace_back(protocol_label[entry.protocol]);
    for (const auto n : pivot.nfe) {
      const auto value = entry.values.find(n);
      row.push_back(value == entry.values.end() ? Json() : Json(value->second));
    }
  }
  return pivot;
}

}  // namespace difflab
