// render_html: the report as one self-contained page (table, Vega-Lite charts, pictures).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "report/report.hpp"
#include "report/report_assets.hpp"
#include "report/report_protocol.hpp"

namespace difflab {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const char* const kBundles[] = {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"};
// The distribution view's UMAP, from the folder of the chart bundles; inlined only into pages
// that have a distribution view, and optional: without it that view says UMAP is unavailable.
const char* const kUmapBundle = "umap-js.min.js";
// Points of one run's loss curve in the chart: longer curves are thinned evenly (last kept).
constexpr std::size_t kMaxLossPoints = 1500;

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// JSON inside <script>: "</" becomes "<\/" (the same string to JSON), so no "</script" ends
// the element early.
std::string json_script_safe(std::string text) {
  for (std::size_t at = 0; (at = text.find("</", at)) != std::string::npos; at += 3) {
    text.replace(at, 2, "<\\/");
  }
  return text;
}

// JavaScript inside <script>: only "</script" (any case) is rewritten; any other "</" may be in a
// regex literal such as /</g, whose meaning "<\/" would change.
std::string script_safe(std::string text) {
  for (std::size_t at = 0; (at = text.find("</", at)) != std::string::npos; at += 2) {
    std::string word = text.substr(at + 2, 6);
    for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (word == "script") text.replace(at, 2, "<\\/");
  }
  return text;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
            kAlphabet[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v =
        static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

bool read_file(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return static_cast<bool>(in) || in.eof();
}

bool has_bundles(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : kBundles) {
    if (!fs::is_regular_file(dir / name, ec)) return false;
  }
  return true;
}

fs::path runner_folder() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// "#3 cosine_beta, 0.001": the grid index and the axis values, as legends and captions say.
std::string run_label(const RunRecord& run, bool with_sweep, const std::string& sweep) {
  std::string label = (with_sweep ? sweep + " " : std::string()) + "#" + std::to_string(run.grid_index);
  const auto axes = Json::parse(run.axes_json, nullptr, false);
  if (axes.is_object() && !axes.empty()) {
    std::string values;
    for (const auto& item : axes.items()) {
      values += (values.empty() ? "" : ", ") + report_cell_text(item.value(), ReportColumnKind::axis, false);
    }
    label += " " + values;
  }
  return label;
}

struct Picture {
  std::string sampler, kind, path;
};

std::string picture_html(const Picture& p) {
  std::string bytes;
  const bool gif = p.kind == "reverse_gif";
  std::string caption = p.sampler.empty() ? std::string() : p.sampler + ": ";
  if (p.kind == "scatter_png") caption += "samples (blue) over the data (grey)";
  if (p.kind == "samples_grid_png") caption += "samples";
  if (p.kind == "reverse_gif") caption += "the reverse process, x_T to x_0";
  if (p.kind == "progression_png") caption += "the reverse process of one sample, x_T to x_0";
  if (p.kind == "distribution_png")
    caption += "samples (blue) over the test images (grey), first two principal components";
  if (p.kind == "reconstructions_png")
    caption += "rows of test images, each followed by their reconstructions";
  if (p.kind == "latent_scatter_png") caption += "latent means of test images, coloured by class";
  if (!read_file(p.path, bytes)) {
    return "<figure><div class=\"note\">missing file " + escape_html(p.path) +
           "</div><figcaption>" + escape_html(caption) + "</figcaption></figure>";
  }
  return "<figure><img alt=\"" + escape_html(caption) + "\" src=\"data:image/" +
         (gif ? "gif" : "png") + ";base64," + base64(bytes) + "\"><figcaption>" +
         escape_html(caption) + "</figcaption></figure>";
}

// The --by-nfe pivot as a plain table (styled as the runs table, not sortable).
std::string pivot_html(const NfePivot& pivot) {
  if (pivot.rows.empty()) return "<p class=\"note\">no runs recorded</p>\n";
  auto align = [&](std::size_t c) {
    return std::string(report_numeric(pivot.columns[c].kind) ? " class=\"num\">" : ">");
  };
  std::string html =
      "<p class=\"note\">" + escape_html(pivot.caption) + "</p>\n" +
      "<div class=\"table-wrap\"><table class=\"runs pivot\" id=\"nfe-pivot\">\n<thead><tr>";
  for (std::size_t c = 0; c < pivot.columns.size(); ++c) {
    html += "<th" + align(c) + escape_html(pivot.columns[c].header) + "</th>";
  }
  html += "</tr></thead>\n<tbody>\n";
  for (const auto& row : pivot.rows) {
    html += "<tr>";
    for (std::size_t c = 0; c < pivot.columns.size(); ++c) {
      html +=
          "<td" + align(c) +
          (row[c].is_null() ? "&ndash;"
                            : escape_html(report_cell_text(row[c], pivot.columns[c].kind, false))) +
          "</td>";
    }
    html += "</tr>\n";
  }
  return html + "</tbody></table></div>\n";
}

// A caption's lines, each a note.
std::string notes_html(const std::string& caption) {
  std::string html, line;
  std::istringstream lines(caption);
  while (std::getline(lines, line)) {
    if (!line.empty()) html += "<p class=\"note\">" + escape_html(line) + "</p>\n";
  }
  return html;
}

// "linear, 0.001": a --over group as legends name it, by its sweep and other axes.
std::string group_label(const OverTable& over, std::size_t group) {
  std::string label;
  for (std::size_t c = 0; c + 1 < over.label_columns; ++c) {  // the last is `runs`
    label += (label.empty() ? "" : ", ") +
             report_cell_text(over.labels[group][c], over.columns[c].kind, false);
  }
  return label.empty() ? "all runs" : label;
}

// The --over table in place of the runs table: a row per group, sortable as the runs table is
// (by the mean), the best mean of each metric column marked.
std::string over_table_html(const OverTable& over) {
  std::vector<std::optional<double>> best(over.columns.size());
  for (std::size_t c = over.label_columns; c < over.columns.size(); ++c) {
    int count = 0;
    for (const auto& values : over.values) {
      const double mean = values[c - over.label_columns].mean;
      if (!std::isfinite(mean)) continue;
      ++count;
      if (!best[c] || improves(over.columns[c].higher_is_better, mean, *best[c])) best[c] = mean;
    }
    if (count < 2) best[c].reset();
  }
  std::string html =
      "<p class=\"note\">Click a header to sort (by the mean). A row per group of runs that "
      "differ only in " + escape_html(over.axis) + " (<code>runs</code>: how many); the best mean "
      "of each metric column is marked green.</p>\n" + notes_html(over.caption) +
      "<div class=\"table-wrap\"><table class=\"runs\" id=\"runs\">\n<thead><tr>";
  for (const auto& column : over.columns) {
    html += std::string("<th") + (report_numeric(column.kind) ? " class=\"num\"" : "") + ">" +
            escape_html(column.header) + "<span class=\"arrow\"></span></th>";
  }
  html += "</tr></thead>\n<tbody>\n";
  for (std::size_t r = 0; r < over.labels.size(); ++r) {
    html += "<tr class=\"group\">";
    for (std::size_t c = 0; c < over.columns.size(); ++c) {
      const auto& column = over.columns[c];
      std::string classes = report_numeric(column.kind) ? "num" : "";
      std::string sort_value, text;
      if (c < over.label_columns) {
        const auto& value = over.labels[r][c];
        sort_value = report_cell_text(value, column.kind, true);
        text = value.is_null() ? "&ndash;" : escape_html(report_cell_text(value, column.kind, false));
      } else {
        const auto& summary = over.values[r][c - over.label_columns];
        if (summary.n > 0) sort_value = report_cell_text(summary.mean, column.kind, true);
        text = summary.n == 0 ? "&ndash;" : escape_html(summary_cell_text(summary, over.interval));
        if (best[c] && summary.mean == *best[c]) classes += " best";
      }
      html += "<td" + (classes.empty() ? std::string() : " class=\"" + classes + "\"") +
              " data-v=\"" + escape_html(sort_value) + "\">" + text + "</td>";
    }
    html += "</tr>\n";
  }
  return html + "</tbody></table></div>\n";
}

// The --compare table: a row per metric column, its mean difference and interval, marked (*)
// where the interval excludes 0; then what it holds and any refusals.
std::string compare_html(const CompareTable& compare) {
  std::string html = "<h2>Paired differences</h2>\n<div class=\"table-wrap\"><table "
                     "class=\"runs pivot\" id=\"compare\">\n<thead><tr><th>metric</th>"
                     "<th class=\"num\">difference (" +
                     escape_html(compare.compare.b + " - " + compare.compare.a) +
                     ")</th></tr></thead>\n<tbody>\n";
  for (const auto& row : compare.rows) {
    std::string text = "&ndash;";
    if (!row.refused.empty()) {
      text = "refused: different protocols";
    } else if (row.difference.n > 0) {
      text = escape_html(summary_cell_text(row.difference, compare.interval)) +
             (row.difference.excludes_zero() ? " *" : "");
    }
    html += "<tr><td>" + escape_html(row.column.header) + "</td><td class=\"num\">" + text +
            "</td></tr>\n";
  }
  return html + "</tbody></table></div>\n" + notes_html(compare.caption);
}

std::string checkpoint_shown(const ReportOptions& options) {
  switch (options.checkpoint) {
    case CheckpointChoice::final: return "final";
    case CheckpointChoice::best: return "best";
    case CheckpointChoice::all: return "all";
    case CheckpointChoice::step: return "step=" + std::to_string(options.checkpoint_at);
    case CheckpointChoice::epoch: return "epoch=" + std::to_string(options.checkpoint_at);
  }
  return "";
}

using CheckpointIndex = std::unordered_map<std::int64_t, const CheckpointRecord*>;  // by id

// Per run id, the latest (by step) of `ids`: among the checkpoints the table shows, the one the
// NFE charts and the distribution view draw (the row's, or with --checkpoint all the latest).
CheckpointIndex latest_per_run(const std::set<std::int64_t>& ids,
                               const CheckpointIndex& checkpoint_of) {
  CheckpointIndex latest;
  for (const auto id : ids) {
    const auto it = checkpoint_of.find(id);
    if (it == checkpoint_of.end()) continue;
    const auto* c = it->second;
    auto& chosen = latest[c->run_id];
    if (!chosen || c->step > chosen->step) chosen = c;
  }
  return latest;
}

// A distribution_json file ({"method": "pca", "components": K, "real": [[K numbers], ...],
// "generated": [...], "real_labels": [...]}) as the page's UMAP takes it, into `view`: the rows
// of K finite numbers, to 4 significant digits (a UMAP of them cannot tell, and the page gets
// much smaller), "labels" of the real rows kept when the file has them for each, and the number
// of rows "dropped" (a diverged sampler's NaN). False when the file is missing or no such view.
bool read_distribution(const std::string& path, Json& view) {
  std::string text;
  if (!read_file(path, text)) return false;
  const auto file = Json::parse(text, nullptr, false);
  if (!file.is_object() || !file.contains("real") || !file.contains("generated")) return false;
  const auto& real = file["real"];
  if (!real.is_array() || real.empty() || !real[0].is_array() || real[0].empty()) return false;
  const auto k = real[0].size();
  const bool labelled = file.contains("real_labels") && file["real_labels"].is_array() &&
                        file["real_labels"].size() == real.size();
  Json labels = Json::array();
  std::size_t dropped = 0;
  for (const std::string set : {"real", "generated"}) {
    const auto& rows = file[set];
    if (!rows.is_array()) return false;
    Json points = Json::array();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& row = rows[i];
      Json point = Json::array();
      for (std::size_t j = 0; row.is_array() && row.size() == k && j < k; ++j) {
        if (!row[j].is_number() || !std::isfinite(row[j].get<double>())) break;
        const auto digits = report_cell_text(row[j], ReportColumnKind::metric, false);
        point.push_back(std::strtod(digits.c_str(), nullptr));
      }
      if (point.size() != k) {
        ++dropped;
        continue;
      }
      if (labelled && set == "real") labels.push_back(file["real_labels"][i]);
      points.push_back(std::move(point));
    }
    view[set] = std::move(points);
  }
  view["components"] = k;
  if (labelled) view["labels"] = std::move(labels);
  view["dropped"] = dropped;
  return true;
}

}  // namespace

std::string find_chart_bundles(const std::string& preferred) {
  if (!preferred.empty()) return has_bundles(preferred) ? preferred : std::string();
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("DIFFLAB_CHART_DIR"); env && *env) candidates.emplace_back(env);
#ifdef DIFFLAB_INSTALL_CHART_SUBDIR
  if (const auto bin = runner_folder(); !bin.empty()) {
    candidates.push_back(bin.parent_path() / DIFFLAB_INSTALL_CHART_SUBDIR);
  }
#endif
#ifdef DIFFLAB_INSTALL_CHART_DIR
  candidates.emplace_back(DIFFLAB_INSTALL_CHART_DIR);
#endif
#ifdef DIFFLAB_BUILD_CHART_DIR
  candidates.emplace_back(DIFFLAB_BUILD_CHART_DIR);
#endif
  for (const auto& dir : candidates) {
    if (has_bundles(dir)) return dir.string();
  }
  return "";
}

std::string render_html(const ReportTable& table, const RunStore& store,
                        const ReportOptions& options) {
  const auto& runs = table.runs;
  std::unordered_map<std::int64_t, std::string> sweep_name;
  for (const auto& s : table.sweeps) sweep_name[s.id] = s.name;
  std::set<std::int64_t> shown_sweeps;
  for (const auto& r : runs) shown_sweeps.insert(r.sweep_id);
  const bool with_sweep = shown_sweeps.size() > 1;
  std::unordered_map<std::int64_t, std::size_t> run_index;
  std::vector<std::string> labels;
  Json run_order = Json::array();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    run_index[runs[i].id] = i;
    labels.push_back(run_label(runs[i], with_sweep, sweep_name[runs[i].sweep_id]));
    run_order.push_back(labels.back());
  }
  // --over: the groups, each run's and their labels, which the metric charts draw instead.
  const auto over =
      options.over.empty() ? std::optional<OverTable>() : make_over_table(table, options);
  const auto compare = options.compare.axis.empty() ? std::optional<CompareTable>()
                                                    : make_compare_table(table, options);
  constexpr auto kNoGroup = static_cast<std::size_t>(-1);
  std::vector<std::size_t> group_of_run(runs.size(), kNoGroup);
  std::vector<std::string> group_labels;
  if (over) {
    run_order = Json::array();
    for (std::size_t g = 0; g < over->members.size(); ++g) {
      for (const auto row : over->members[g]) group_of_run[table.row_run[row]] = g;
      group_labels.push_back(group_label(*over, g));
      run_order.push_back(group_labels.back());
    }
  }
  CheckpointIndex checkpoint_of;
  for (const auto& c : table.checkpoints) checkpoint_of[c.id] = &c;

  // Chart data: losses thinned per run, metric values per (metric, variant) chart.
  Json losses = Json::array();
  for (std::size_t begin = 0; begin < table.losses.size();) {
    std::size_t end = begin;
    while (end < table.losses.size() && table.losses[end].first == table.losses[begin].first) ++end;
    const auto it = run_index.find(table.losses[begin].first);
    const std::size_t count = end - begin;
    const std::size_t stride = (count + kMaxLossPoints - 1) / kMaxLossPoints;
    for (std::size_t i = begin; it != run_index.end() && i < end; ++i) {
      if ((i - begin) % stride != 0 && i + 1 != end) continue;
      const auto& l = table.losses[i].second;
      losses.push_back({{"run", labels[it->second]}, {"step", l.step}, {"epoch", l.epoch},
                        {"loss", std::isfinite(l.loss) ? Json(l.loss) : Json()}});
    }
    begin = end;
  }
  // A series per sampler, and per protocol where one metric, variant and sampler's values were
  // measured under several: "ddpm{samples=1000}", named as the table's split columns are.
  std::vector<std::string> series(table.metrics.size());
  {
    std::map<std::string, std::size_t> protocol_id;  // protocol_json -> canonical
    std::vector<std::string> canonical;
    std::vector<std::size_t> record_protocol(table.metrics.size());
    using Key = std::tuple<std::string, std::string, std::string>;
    std::map<Key, std::vector<std::size_t>> key_protocols;  // canonical ids, first seen first
    for (std::size_t i = 0; i < table.metrics.size(); ++i) {
      const auto& m = table.metrics[i];
      auto it = protocol_id.find(m.protocol_json);
      if (it == protocol_id.end()) {
        const auto form = canonical_protocol(m.protocol_json);
        auto same = std::find(canonical.begin(), canonical.end(), form);
        if (same == canonical.end()) same = canonical.insert(canonical.end(), form);
        it = protocol_id
                 .emplace(m.protocol_json, static_cast<std::size_t>(same - canonical.begin()))
                 .first;
      }
      record_protocol[i] = it->second;
      auto& seen = key_protocols[Key{m.metric, m.variant, m.sampler}];
      if (std::find(seen.begin(), seen.end(), it->second) == seen.end()) seen.push_back(it->second);
    }
    std::map<std::pair<Key, std::size_t>, std::string> suffix;
    for (const auto& [key, ids] : key_protocols) {
      if (ids.size() < 2) continue;
      std::vector<std::string> forms;
      for (const auto id : ids) forms.push_back(canonical[id]);
      const auto names = protocol_labels(forms);
      for (std::size_t i = 0; i < ids.size(); ++i) suffix[{key, ids[i]}] = names[i];
    }
    for (std::size_t i = 0; i < table.metrics.size(); ++i) {
      const auto& m = table.metrics[i];
      series[i] = m.sampler.empty() ? std::string("(model)") : m.sampler;
      if (suffix.empty()) continue;
      const auto it = suffix.find({Key{m.metric, m.variant, m.sampler}, record_protocol[i]});
      if (it != suffix.end()) series[i] += it->second;
    }
  }
  // Metric values per (metric, variant) chart: each run's, or with --over each group's mean and
  // interval at each epoch (of its runs' values there).
  std::map<std::pair<std::string, std::string>, std::size_t> chart_of;
  std::vector<std::set<std::string>> chart_samplers;
  Json charts = Json::array(), metric_points = Json::array();
  struct GroupValues {
    std::int64_t step = 0;
    std::vector<double> values;
  };
  // (chart, group, series, epoch) -> the values there
  std::map<std::tuple<std::size_t, std::size_t, std::string, std::int64_t>, GroupValues> grouped;
  for (std::size_t i = 0; i < table.metrics.size(); ++i) {
    const auto& m = table.metrics[i];
    const auto c = checkpoint_of.find(m.checkpoint_id);
    if (c == checkpoint_of.end()) continue;
    const auto r = run_index.find(c->second->run_id);
    if (r == run_index.end()) continue;
    if (over && group_of_run[r->second] == kNoGroup) continue;
    const auto key = std::make_pair(m.metric, m.variant);
    auto chart = chart_of.find(key);
    if (chart == chart_of.end()) {
      chart = chart_of.emplace(key, charts.size()).first;
      charts.push_back({{"metric", m.metric}, {"variant", m.variant},
                        {"higher", m.better == "higher"}});
      chart_samplers.emplace_back();
    }
    chart_samplers[chart->second].insert(series[i]);
    if (over) {
      auto& at = grouped[{chart->second, group_of_run[r->second], series[i], c->second->epoch}];
      if (at.values.empty()) at.step = c->second->step;
      at.values.push_back(m.value);
      continue;
    }
    metric_points.push_back({{"run", labels[r->second]},
                             {"sampler", series[i]},
                             {"chart", chart->second}, {"epoch", c->second->epoch},
                             {"step", c->second->step},
                             {"value", std::isfinite(m.value) ? Json(m.value) : Json()}});
  }
  auto number = [](double v) { return std::isfinite(v) ? Json(v) : Json(); };
  for (const auto& [where, at] : grouped) {
    const auto& [chart, group, name, epoch] = where;
    const auto s = summarize(at.values, over->interval);
    metric_points.push_back({{"run", group_labels[group]}, {"sampler", name}, {"chart", chart},
                             {"epoch", epoch}, {"step", at.step}, {"value", number(s.mean)},
                             {"ci_low", number(s.ci_low)}, {"ci_high", number(s.ci_high)},
                             {"n", s.n}});
  }
  for (std::size_t i = 0; i < charts.size(); ++i) charts[i]["samplers"] = chart_samplers[i].size();

  // Quality against model calls: each run's shown checkpoint (with --checkpoint all, its latest
  // with NFE values); a chart per (metric, variant) that some run has at 2+ NFE.
  std::set<std::int64_t> shown_checkpoints(table.row_checkpoint.begin(),
                                           table.row_checkpoint.end());
  std::set<std::int64_t> with_nfe;
  for (const auto& m : table.metrics) {
    if (m.nfe > 0 && !m.sampler.empty() && shown_checkpoints.count(m.checkpoint_id))
      with_nfe.insert(m.checkpoint_id);
  }
  const auto nfe_checkpoint = latest_per_run(with_nfe, checkpoint_of);
  struct NfeChart {
    std::string metric, variant;
    bool higher = false;
    std::set<std::string> families, runs;
    std::map<std::int64_t, std::set<std::int64_t>> nfe_of_run;  // run id -> its NFE values
    Json points = Json::array();
  };
  std::map<std::pair<std::string, std::string>, std::size_t> nfe_chart_of;
  std::vector<NfeChart> nfe_charts;
  for (const auto& m : table.metrics) {
    if (m.nfe <= 0 || m.sampler.empty()) continue;
    const auto it = checkpoint_of.find(m.checkpoint_id);
    if (it == checkpoint_of.end()) continue;
    const auto* c = it->second;
    const auto chosen = nfe_checkpoint.find(c->run_id);
    if (chosen == nfe_checkpoint.end() || chosen->second != c) continue;
    const auto key = std::make_pair(m.metric, m.variant);
    auto chart = nfe_chart_of.find(key);
    if (chart == nfe_chart_of.end()) {
      chart = nfe_chart_of.emplace(key, nfe_charts.size()).first;
      nfe_charts.push_back({m.metric, m.variant, m.better == "higher", {}, {}, {}, Json::array()});
    }
    auto& nc = nfe_charts[chart->second];
    const auto& label = labels[run_index[c->run_id]];
    const auto family = sampler_family(m.sampler);
    nc.families.insert(family);
    nc.runs.insert(label);
    nc.nfe_of_run[c->run_id].insert(m.nfe);
    nc.points.push_back({{"run", label},
                         {"family", family},
                         {"sampler", m.sampler},
                         {"nfe", m.nfe},
                         {"epoch", c->epoch},
                         {"value", std::isfinite(m.value) ? Json(m.value) : Json()}});
  }
  Json nfe_chart_data = Json::array();
  std::vector<std::size_t> drawn_nfe_charts;  // indexes into nfe_charts
  for (std::size_t i = 0; i < nfe_charts.size(); ++i) {
    const auto& nc = nfe_charts[i];
    const bool several = std::any_of(nc.nfe_of_run.begin(), nc.nfe_of_run.end(),
                                     [](const auto& run) { return run.second.size() > 1; });
    if (!several) continue;  // one NFE per run: nothing to draw against
    drawn_nfe_charts.push_back(i);
    nfe_chart_data.push_back({{"metric", nc.metric},
                              {"variant", nc.variant},
                              {"higher", nc.higher},
                              {"families", nc.families.size()},
                              {"runs", nc.runs.size()},
                              {"values", nc.points}});
  }
  const auto pivot = options.by_nfe.empty()
                         ? std::optional<NfePivot>()
                         : make_nfe_pivot(table, options.by_nfe, options.checkpoint);

  // The distribution view: each run's shown checkpoint (the latest with --checkpoint all) that
  // has distribution_json artifacts, one view per sampler, runs in the table's order.
  std::set<std::int64_t> with_view;
  for (const auto& a : table.artifacts) {
    if (a.kind == "distribution_json" && shown_checkpoints.count(a.checkpoint_id))
      with_view.insert(a.checkpoint_id);
  }
  const auto view_checkpoint = latest_per_run(with_view, checkpoint_of);
  std::vector<std::pair<std::size_t, const ArtifactRecord*>> view_files;  // (run index, file)
  for (const auto& a : table.artifacts) {
    if (a.kind != "distribution_json") continue;
    const auto c = checkpoint_of.find(a.checkpoint_id);
    if (c == checkpoint_of.end()) continue;
    const auto chosen = view_checkpoint.find(c->second->run_id);
    if (chosen == view_checkpoint.end() || chosen->second != c->second) continue;
    view_files.emplace_back(run_index[c->second->run_id], &a);
  }
  std::stable_sort(view_files.begin(), view_files.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  Json distributions = Json::array();
  std::vector<std::string> unreadable_views;
  for (const auto& [run, file] : view_files) {
    Json view = {{"run", labels[run]},
                 {"sampler", file->sampler},
                 {"epoch", checkpoint_of[file->checkpoint_id]->epoch}};
    if (read_distribution(file->path, view)) {
      distributions.push_back(std::move(view));
    } else {
      unreadable_views.push_back(file->path);
    }
  }

  const Json data = {{"run_order", run_order},
                     {"over", over ? Json(over->axis) : Json()},
                     {"losses", losses},
                     {"charts", charts},
                     {"metrics", metric_points},
                     {"nfe_charts", nfe_chart_data},
                     {"distributions", distributions}};

  const auto bundle_dir = find_chart_bundles(options.chart_dir);
  std::string bundles;
  for (const char* name : kBundles) {
    std::string text;
    if (bundle_dir.empty() || !read_file(fs::path(bundle_dir) / name, text)) {
      bundles.clear();
      break;
    }
    bundles += "<script>" + script_safe(text) + "</script>\n";
  }
  std::string umap;  // drawn by Vega-Lite: of no use without the chart bundles
  if (!distributions.empty() && !bundles.empty() &&
      read_file(fs::path(bundle_dir) / kUmapBundle, umap)) {
    bundles += "<script>" + script_safe(umap) + "</script>\n";
  }

  int done = 0, failed = 0, running = 0, pending = 0;
  for (const auto& r : runs) {
    done += r.status == RunStatus::done;
    failed += r.status == RunStatus::failed;
    running += r.status == RunStatus::running;
    pending += r.status == RunStatus::pending;
  }
  std::string sweeps_text;
  for (const auto id : shown_sweeps) sweeps_text += (sweeps_text.empty() ? "" : ", ") + sweep_name[id];

  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<title>difflab report: " + escape_html(sweeps_text.empty() ? "no runs" : sweeps_text) +
          "</title>\n<style>" + kReportStyle + "</style>\n";
  html += "<script>" + std::string(kReportErrorCatcher) + "</script>\n" + bundles + "</head>\n<body>\n";
  html += "<header><h1>difflab report" +
          (sweeps_text.empty() ? std::string() : ": " + escape_html(sweeps_text)) + "</h1>\n";
  html += "<div class=\"meta\">" + escape_html(store.path()) + " &middot; written " + utc_now("%Y-%m-%d %H:%M UTC") +
          " &middot; checkpoint shown: " + escape_html(checkpoint_shown(options)) +
          "</div>\n<div class=\"counts\"><span><b>" + std::to_string(runs.size()) +
          "</b> runs</span><span><b>" + std::to_string(done) + "</b> done</span><span><b>" +
          std::to_string(failed) + "</b> failed</span>" +
          (running ? "<span><b>" + std::to_string(running) + "</b> running</span>" : "") +
          (pending ? "<span><b>" + std::to_string(pending) + "</b> pending</span>" : "") +
          "</div>\n";
  if (bundles.empty()) {
    html += "<div class=\"banner\" id=\"charts-unavailable\">Charts unavailable: the Vega-Lite "
            "bundles were not found when this report was written (the build fetches them with "
            "npm). The table and the pictures below are complete.</div>\n";
  }
  html += "</header>\n<main>\n";

  // The comparison table: the best value of each metric column marked, failed runs in red; with
  // --over, the groups instead; with --compare, the paired differences first.
  if (compare && !runs.empty()) html += compare_html(*compare);
  html += over ? "<h2>Runs over " + escape_html(over->axis) + "</h2>\n" : "<h2>Runs</h2>\n";
  if (runs.empty()) {
    html += "<p class=\"note\">no runs recorded in " + escape_html(store.path()) +
            (options.sweep.empty() ? std::string() : " for sweep '" + escape_html(options.sweep) + "'") +
            "</p>\n";
  } else if (over) {
    html += over_table_html(*over);
  } else {
    std::vector<std::optional<double>> best(table.columns.size());
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (table.columns[c].kind != ReportColumnKind::metric) continue;
      const bool higher = table.columns[c].higher_is_better;
      int count = 0;
      for (const auto& row : table.rows) {
        if (!row[c].is_number()) continue;
        const double v = row[c].get<double>();
        if (!std::isfinite(v)) continue;
        ++count;
        if (!best[c] || improves(higher, v, *best[c])) best[c] = v;
      }
      if (count < 2) best[c].reset();  // one value is no comparison
    }
    html += "<p class=\"note\">Click a header to sort. The best value of each metric column is "
            "marked green (the lowest, or the highest where the metric improves upwards).";
    if (!table.footer.empty()) html += " " + escape_html(table.footer);
    html += "</p>\n<div class=\"table-wrap\"><table class=\"runs\" id=\"runs\">\n<thead><tr>";
    for (const auto& column : table.columns) {
      const bool num = report_numeric(column.kind);
      html += std::string("<th") + (num ? " class=\"num\"" : "") + ">" + escape_html(column.header) +
              "<span class=\"arrow\"></span></th>";
    }
    html += "</tr></thead>\n<tbody>\n";
    for (std::size_t r = 0; r < table.rows.size(); ++r) {
      const auto& run = runs[table.row_run[r]];
      const std::string status = run_status_name(run.status);
      html += "<tr class=\"run " + status + "\" data-run=\"" + std::to_string(run.grid_index) + "\">";
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        const auto& column = table.columns[c];
        const auto& value = table.rows[r][c];
        std::string classes = report_numeric(column.kind) ? "num" : "";
        if (column.header == "reason" && column.kind == ReportColumnKind::text) classes = "reason";
        if (best[c] && value.is_number() && value.get<double>() == *best[c]) classes += " best";
        const auto sort_value = report_cell_text(value, column.kind, true);
        std::string text = value.is_null() ? "&ndash;" : escape_html(report_cell_text(value, column.kind, false));
        if (column.header == "status" && column.kind == ReportColumnKind::text) {
          text = "<span class=\"status " + status + "\">" + text + "</span>";
        }
        html += "<td" + (classes.empty() ? std::string() : " class=\"" + classes + "\"") +
                " data-v=\"" + escape_html(sort_value) + "\">" + text + "</td>";
      }
      html += "</tr>\n";
    }
    html += "</tbody></table></div>\n";
  }

  html += "<h2>Training loss</h2>\n";
  if (losses.empty()) {
    html += "<p class=\"note\">no training losses recorded</p>\n";
  } else {
    html += "<label class=\"toggle\"><input type=\"checkbox\" id=\"loss-log\" checked> log scale</label>\n"
            "<div class=\"chart\" id=\"chart-loss\" data-state=\"pending\"></div>\n";
  }
  html += "<h2>Metrics per checkpoint</h2>\n";
  if (charts.empty()) {
    html += "<p class=\"note\">no metric values recorded</p>\n";
  } else {
    html += over ? "<p class=\"note\">One chart per metric: a line per group of runs that differ "
                   "only in " + escape_html(over->axis) + " (colour) and sampler (dash), at the "
                   "mean of its runs' values at each epoch, in a band: their 95% confidence "
                   "interval (none where one run has a value).</p>\n<div class=\"charts\">\n"
                 : "<p class=\"note\">One chart per metric: a line per run (colour) and sampler "
                   "(dash).</p>\n<div class=\"charts\">\n";
    for (std::size_t i = 0; i < charts.size(); ++i) {
      const auto& variant = charts[i]["variant"].get<std::string>();
      html += "<div class=\"card-chart\"><h3>" + escape_html(charts[i]["metric"].get<std::string>()) +
              (variant.empty() ? std::string() : " <small>" + escape_html(variant) + "</small>") +
              "</h3><div class=\"chart\" id=\"chart-metric-" + std::to_string(i) +
              "\" data-state=\"pending\"></div></div>\n";
    }
    html += "</div>\n";
  }

  // Quality against NFE: the --by-nfe pivot, then the charts; no section when neither is there.
  if (pivot || !drawn_nfe_charts.empty()) {
    html += "<h2>Quality against model calls (NFE)</h2>\n";
  }
  if (pivot) html += pivot_html(*pivot);
  if (!drawn_nfe_charts.empty()) {
    html +=
        "<p class=\"note\">One chart per metric measured at two or more NFE in a run: the value "
        "at each run's checkpoint shown against the sampler's model calls per sample (log "
        "scale), a line per sampler family (its label without steps).</p>\n<div "
        "class=\"charts\">\n";
    for (std::size_t i = 0; i < drawn_nfe_charts.size(); ++i) {
      const auto& nc = nfe_charts[drawn_nfe_charts[i]];
      html +=
          "<div class=\"card-chart\"><h3>" + escape_html(nc.metric) +
          (nc.variant.empty() ? std::string() : " <small>" + escape_html(nc.variant) + "</small>") +
          " <small>by NFE</small></h3><div class=\"chart\" id=\"nfe-chart-" + std::to_string(i) +
          "\" data-state=\"pending\"></div></div>\n";
    }
    html += "</div>\n";
  }

  // Where samples lie among the data: a UMAP per run and sampler, computed in the page (it
  // takes a second or two a view: the first on load, the others when chosen); no section
  // without distribution views.
  if (!distributions.empty() || !unreadable_views.empty()) {
    html +=
        "<h2>Distribution view</h2>\n<p class=\"note\">Where the generated samples lie among "
        "the real test images: a UMAP (McInnes et al. 2018) of both, computed in this page "
        "(umap-js, seeded: the same picture each time) from their coordinates on the first "
        "principal components of the real images, at the checkpoint the table shows. Real "
        "images grey, generated samples blue: blue away from grey is unlike the data, grey "
        "without blue is a part of the data the model misses.</p>\n";
    if (umap.empty() && !distributions.empty()) {
      html += "<div class=\"banner\" id=\"umap-unavailable\">UMAP unavailable: the umap-js "
              "bundle was not found when this report was written (the build fetches it with npm, "
              "with the chart bundles). Each run's pictures below show the same points on the "
              "first two principal components.</div>\n";
    }
    for (const auto& path : unreadable_views) {
      html += "<p class=\"note\">missing or unreadable file " + escape_html(path) + "</p>\n";
    }
    if (!distributions.empty()) {
      html += "<div class=\"card-chart umap-card\"><label class=\"toggle\">run and sampler "
              "<select id=\"umap-select\">";
      for (std::size_t i = 0; i < distributions.size(); ++i) {
        const auto& view = distributions[i];
        html += "<option value=\"" + std::to_string(i) + "\">" +
                escape_html(view["run"].get<std::string>() + ": " +
                            view["sampler"].get<std::string>() + " (epoch " +
                            std::to_string(view["epoch"].get<std::int64_t>()) + ")") +
                "</option>";
      }
      html += "</select></label>\n<div class=\"chart\" id=\"umap-view\" "
              "data-state=\"pending\"></div></div>\n";
    }
  }

  // Pictures: each run's latest checkpoint that has any, in the order they were recorded.
  static const std::set<std::string> kPictureKinds = {
      "scatter_png",      "samples_grid_png",    "reverse_gif",       "progression_png",
      "distribution_png", "reconstructions_png", "latent_scatter_png"};
  std::vector<const CheckpointRecord*> latest(runs.size(), nullptr);
  for (const auto& a : table.artifacts) {
    if (!kPictureKinds.count(a.kind)) continue;
    const auto c = checkpoint_of.find(a.checkpoint_id);
    if (c == checkpoint_of.end()) continue;
    const auto r = run_index.find(c->second->run_id);
    if (r == run_index.end()) continue;
    auto& l = latest[r->second];
    if (!l || c->second->step > l->step) l = c->second;
  }
  std::unordered_map<std::int64_t, std::vector<Picture>> pictures;  // by checkpoint id
  for (const auto& a : table.artifacts) {
    if (kPictureKinds.count(a.kind)) pictures[a.checkpoint_id].push_back({a.sampler, a.kind, a.path});
  }
  html += "<h2>Samples</h2>\n<p class=\"note\">Each run's latest checkpoint with pictures: 2-D "
          "runs show their samples over the data and the reverse process of the first sampler "
          "as an animation; image runs their sample grid, the denoising strip and their samples "
          "over the test images; autoencoder runs their reconstructions and latent means.</p>\n"
          "<div class=\"runs-pictures\">\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& run = runs[i];
    const std::string status = run_status_name(run.status);
    html += "<div class=\"run-card\" data-run=\"" + std::to_string(run.grid_index) + "\"><h3>" +
            escape_html(labels[i]) + " <span class=\"status " + status + "\">" + status + "</span>";
    if (latest[i]) html += " <small>epoch " + std::to_string(latest[i]->epoch) + "</small>";
    html += "</h3>\n";
    if (run.status == RunStatus::failed) {
      html += "<p class=\"note\">failed: " + escape_html(run.reason) + "</p>\n";
    }
    if (!latest[i]) {
      html += "<p class=\"note\">no pictures recorded</p>\n";
    } else {
      html += "<div class=\"pics\">";
      for (const auto& p : pictures[latest[i]->id]) html += picture_html(p);
      html += "</div>\n";
    }
    html += "</div>\n";
  }
  html += "</div>\n<pre id=\"errors\"></pre>\n</main>\n";
  html += "<script type=\"application/json\" id=\"difflab-data\">" + json_script_safe(data.dump()) +
          "</script>\n<script>" + kReportScript + "</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace difflab
