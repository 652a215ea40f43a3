// render_report: the store's runs as one table (plain text, markdown, CSV or JSON).
#include "report/report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "api/did_you_mean.hpp"
#include "difflab/errors.hpp"

namespace difflab {
namespace {

using Json = nlohmann::ordered_json;  // keeps axes and row keys in first-seen order

constexpr std::size_t kTableReasonWidth = 60;
// The key metric of CheckpointChoice::best, in order of preference; else the first column.
const std::vector<std::string> kBestMetrics = {"wasserstein", "fid", "mmd", "test_loss"};

using ColumnKind = ReportColumnKind;
using Column = ReportColumn;

std::string format_double(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// Shortest text that reads back as the same double: 0.0001, not 1.000000e-04.
std::string compact_double(double value) {
  if (!std::isfinite(value)) return format_double("%g", value);
  for (int precision = 1; precision <= 17; ++precision) {
    char format[8];
    std::snprintf(format, sizeof format, "%%.%dg", precision);
    auto text = format_double(format, value);
    if (std::strtod(text.c_str(), nullptr) == value) return text;
  }
  return format_double("%.17g", value);
}

// printf's "%.<precision>g" for finite values (std::to_chars is specified to match it), several
// times quicker: a report of every checkpoint prints millions of values.
std::string general_double(double value, int precision) {
  if (!std::isfinite(value)) return format_double("%g", value);
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, value, std::chars_format::general,
                                 precision).ptr;
  return std::string(text, end);
}

}  // namespace

// One cell as text; `full` keeps every digit of metric values (CSV) instead of 4 (tables).
std::string report_cell_text(const Json& value, ColumnKind kind, bool full) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (kind == ColumnKind::metric) return general_double(v, full ? 17 : 4);
    return compact_double(v);
  }
  return value.dump();  // arrays and objects given as axis values
}

namespace {

std::string cell_text(const Json& value, ColumnKind kind, bool full) {
  return report_cell_text(value, kind, full);
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

bool right_aligned(ColumnKind kind) {
  return kind == ColumnKind::integer || kind == ColumnKind::metric;
}

std::string render_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<Json>>& rows) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& c : columns) widths.push_back(c.header.size());
  for (const auto& row : rows) {
    auto& line = cells.emplace_back();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      std::string text =
          row[i].is_null() ? "-" : one_line(cell_text(row[i], columns[i].kind, false));
      if (columns[i].header == "reason" && text.size() > kTableReasonWidth) {
        text = text.substr(0, kTableReasonWidth - 3) + "...";
      }
      widths[i] = std::max(widths[i], text.size());
      line.push_back(std::move(text));
    }
  }
  auto emit = [&](const std::vector<std::string>& texts, std::string& out) {
    std::string line;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::string pad(widths[i] - texts[i].size(), ' ');
      if (i > 0) line += "  ";
      line += right_aligned(columns[i].kind) ? pad + texts[i] : texts[i] + pad;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  };
  std::string out;
  std::vector<std::string> headers, rule;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    headers.push_back(columns[i].header);
    rule.emplace_back(widths[i], '-');
  }
  emit(headers, out);
  emit(rule, out);
  for (const auto& line : cells) emit(line, out);
  return out;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : one_line(text)) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string render_markdown(const std::vector<Column>& columns,
                            const std::vector<std::vector<Json>>& rows) {
  std::string out = "|";
  for (const auto& c : columns) out += " " + markdown_escape(c.header) + " |";
  out += "\n|";
  for (const auto& c : columns) out += right_aligned(c.kind) ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : rows) {
    out += "|";
    for (std::size_t i = 0; i < columns.size(); ++i) {
      out += " " +
             (row[i].is_null() ? std::string("-")
                               : markdown_escape(cell_text(row[i], columns[i].kind, false))) +
             " |";
    }
    out += "\n";
  }
  return out;
}

// RFC 4180: quote a field holding a comma, quote or line break; double the quotes inside.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string render_csv(const std::vector<Column>& columns,
                       const std::vector<std::vector<Json>>& rows) {
  std::string out;
  for (std::size_t i = 0; i < columns.size(); ++i)
    out += (i ? "," : "") + csv_field(columns[i].header);
  out += "\n";
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      out += (i ? "," : "") + csv_field(cell_text(row[i], columns[i].kind, true));
    }
    out += "\n";
  }
  return out;
}

std::string render_json(const std::vector<Column>& columns,
                        const std::vector<std::vector<Json>>& rows) {
  Json out = Json::array();
  for (const auto& row : rows) {
    Json object = Json::object();
    for (std::size_t i = 0; i < columns.size(); ++i) object[columns[i].header] = row[i];
    out.push_back(std::move(object));
  }
  return out.dump(2) + "\n";  // NaN and infinities dump as null
}

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

}  // namespace

ReportFormat parse_report_format(const std::string& name) {
  if (name == "table") return ReportFormat::table;
  if (name == "markdown" || name == "md") return ReportFormat::markdown;
  if (name == "csv") return ReportFormat::csv;
  if (name == "json") return ReportFormat::json;
  if (name == "html") return ReportFormat::html;
  std::string message = "unknown report format '" + name + "'";
  if (auto guess = did_you_mean(name, {"table", "markdown", "csv", "json", "html"}); !guess.empty()) {
    message += " (did you mean '" + guess + "'?)";
  }
  throw InputError(message + "; expected table, markdown, csv, json or html");
}

CheckpointChoice parse_checkpoint_choice(const std::string& name) {
  if (name == "final") return CheckpointChoice::final;
  if (name == "best") return CheckpointChoice::best;
  if (name == "all") return CheckpointChoice::all;
  std::string message = "unknown checkpoint choice '" + name + "'";
  if (auto guess = did_you_mean(name, {"final", "best", "all"}); !guess.empty()) {
    message += " (did you mean '" + guess + "'?)";
  }
  throw InputError(message + "; expected final, best or all");
}

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
  store.snapshot([&] {  // one consistent view while a sweep goes on writing
    runs = store.runs(options.sweep);
    // One checkpoint per run, without html's charts of every value: the store chooses the
    // candidates by index, and the rules below pick from them what they would from them all.
    const bool one_per_run = options.checkpoint != CheckpointChoice::all &&
                             options.format != ReportFormat::html && store.has_report_index();
    if (one_per_run) {
      recorded_keys = store.metric_keys(options.sweep);
      const auto final_ids = store.final_checkpoints(options.sweep);
      std::vector<std::int64_t> ids;
      if (options.checkpoint == CheckpointChoice::best) {
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
        for (const auto& [run, checkpoint] : final_ids) ids.push_back(checkpoint);
      }
      checkpoints = store.checkpoints_with_ids(ids);
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

  auto values_of = [&](const CheckpointRecord* c) {
    std::vector<std::optional<double>> values(metric_keys.size());
    if (!c) return values;
    if (auto it = checkpoint_metrics.find(c->id); it != checkpoint_metrics.end()) {
      for (const auto i : it->second) {
        if (column_of[i] < values.size()) values[column_of[i]] = metrics[i].value;
      }
    }
    return values;
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
        const auto value = values_of(c)[*key_column];
        if (!value || !std::isfinite(*value)) continue;
        if (!best || improves(metric_keys[*key_column].better == "higher", *value, best_value)) {
          best = c;
          best_value = *value;
        }
      }
    }
    return best ? best : final_checkpoint(list);
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
      case CheckpointChoice::all:
        if (list.empty()) shown.push_back({&runs[i], nullptr});
        for (const auto* c : list) shown.push_back({&runs[i], c});
        break;
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
  bool any_failed = false;
  for (const auto& r : runs) {
    shown_sweeps.insert(r.sweep_id);
    any_failed = any_failed || r.status == RunStatus::failed;
  }
  const bool sweep_column = options.sweep.empty() && shown_sweeps.size() > 1;

  auto& columns = table.columns;
  if (sweep_column) columns.push_back({"sweep", ColumnKind::text, ""});
  columns.push_back({"run", ColumnKind::integer, ""});
  for (const auto& name : axis_names) columns.push_back({name, ColumnKind::axis, ""});
  columns.push_back({"status", ColumnKind::text, ""});
  columns.push_back({"epoch", ColumnKind::integer, ""});
  const std::size_t first_metric_column = columns.size();
  for (const auto& key : metric_keys) {
    columns.push_back({metric_header(key, variants_of[key.metric].size() > 1), ColumnKind::metric, key.metric,
                       key.better == "higher"});
  }
  if (any_failed) columns.push_back({"reason", ColumnKind::text, ""});  // last: long free text

  auto& rows = table.rows;
  for (const auto& s : shown) {
    const auto& run = *s.run;
    table.row_run.push_back(run_index[run.id]);
    table.row_checkpoint.push_back(s.checkpoint ? s.checkpoint->id : 0);
    auto& row = rows.emplace_back();
    if (sweep_column) row.emplace_back(sweep_names[run.sweep_id]);
    row.emplace_back(run.grid_index);
    const auto& run_axes = axes[run_index[run.id]];
    for (const auto& name : axis_names)
      row.push_back(run_axes.contains(name) ? run_axes[name] : Json());
    row.emplace_back(run_status_name(run.status));
    row.push_back(s.checkpoint ? Json(s.checkpoint->epoch) : Json());
    for (const auto& value : values_of(s.checkpoint)) row.push_back(value ? Json(*value) : Json());
    if (any_failed) row.push_back(run.status == RunStatus::failed ? Json(run.reason) : Json());
  }

  // Tables say which column chose the best checkpoints; CSV and JSON stay pure data.
  if (options.checkpoint == CheckpointChoice::best && key_column) {
    table.best_key = first_metric_column + *key_column;
    table.footer = std::string("best checkpoint per run: ") +
                   (columns[*table.best_key].higher_is_better ? "highest " : "lowest ") +
                   columns[*table.best_key].header + "\n";
  }
  return table;
}

std::string render_report(const RunStore& store, const ReportOptions& options) {
  const auto table = make_report_table(store, options);
  if (table.runs.empty() && options.format != ReportFormat::html) {
    if (options.format == ReportFormat::json) return "[]\n";
    if (options.format == ReportFormat::csv) return "";
    return "no runs recorded in " + store.path() +
           (options.sweep.empty() ? std::string() : " for sweep '" + options.sweep + "'") + "\n";
  }
  const auto& columns = table.columns;
  const auto& rows = table.rows;
  const auto& footer = table.footer;
  switch (options.format) {
    case ReportFormat::table:
      return render_table(columns, rows) + (footer.empty() ? "" : "\n" + footer);
    case ReportFormat::markdown:
      return render_markdown(columns, rows) + (footer.empty() ? "" : "\n" + footer);
    case ReportFormat::csv:
      return render_csv(columns, rows);
    case ReportFormat::json:
      return render_json(columns, rows);
    case ReportFormat::html:
      return render_html(table, store, options);
  }
  return {};
}

}  // namespace difflab
