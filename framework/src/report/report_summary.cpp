// make_over_table and make_compare_table: the runs table's rows grouped over one axis (--over)
// or paired across two of its values (--compare), each metric column summarized with its
// confidence interval (report_stats.cpp). The formats print them in report.cpp and report_html.cpp.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/did_you_mean.hpp"
#include "difflab/errors.hpp"
#include "report/report.hpp"
#include "report/report_protocol.hpp"

namespace difflab {
namespace {

using Json = nlohmann::ordered_json;

std::string listed(const std::vector<std::string>& names) {
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  return all.empty() ? std::string("none") : all;
}

// Where the grouping columns of the runs table are: sweep, the axes, the metrics.
struct TableLayout {
  std::optional<std::size_t> sweep;
  std::vector<std::size_t> axes, metrics;
  std::vector<std::string> axis_names;
};

TableLayout layout_of(const ReportTable& table) {
  TableLayout layout;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    const auto& column = table.columns[c];
    if (c == 0 && column.header == "sweep" && column.kind == ReportColumnKind::text)
      layout.sweep = c;
    if (column.kind == ReportColumnKind::axis) {
      layout.axes.push_back(c);
      layout.axis_names.push_back(column.header);
    }
    if (column.kind == ReportColumnKind::metric) layout.metrics.push_back(c);
  }
  return layout;
}

// The axis column named `axis`; InputError naming `flag`, a guess and the axes there otherwise.
std::size_t axis_column(const TableLayout& layout, const std::string& axis,
                        const std::string& flag) {
  for (std::size_t i = 0; i < layout.axes.size(); ++i) {
    if (layout.axis_names[i] == axis) return layout.axes[i];
  }
  std::string message = flag + ": no axis '" + axis + "' in the runs shown";
  if (auto guess = did_you_mean(axis, layout.axis_names); !guess.empty()) {
    message += " (did you mean '" + guess + "'?)";
  }
  throw InputError(message + "; axes: " + listed(layout.axis_names));
}

// A row's identity apart from `except`: its sweep and every other axis value.
std::string group_key(const ReportTable& table, const TableLayout& layout, std::size_t row,
                      std::size_t except) {
  std::string key;
  if (layout.sweep) key += table.rows[row][*layout.sweep].dump() + '\x1f';
  for (const auto c : layout.axes) {
    if (c != except) key += table.rows[row][c].dump() + '\x1f';
  }
  return key;
}

void refuse_all_checkpoints(const ReportOptions& options, const std::string& flag) {
  if (options.checkpoint == CheckpointChoice::all) {
    throw InputError(flag +
                     " takes one checkpoint per run: use it with --checkpoint final, best, "
                     "step=N or epoch=N, not all");
  }
}

std::string interval_words(ReportInterval interval) {
  return interval == ReportInterval::t
             ? "mean ± half-width of its 95% confidence interval (Student t: t_{0.975,n-1} "
               "s/sqrt(n))"
             : "mean [95% confidence interval: percentile bootstrap, " +
                   std::to_string(kBootstrapResamples) + " resamples]";
}

}  // namespace

OverTable make_over_table(const ReportTable& table, const ReportOptions& options) {
  refuse_all_checkpoints(options, "--over");
  OverTable over;
  over.axis = options.over;
  over.interval = options.interval;
  over.caption = interval_words(options.interval) + " over the runs of each group (they differ " +
                 "only in " + options.over + "); s: their standard deviation (n - 1); n: runs with a value\n" +
                 table.footer;
  if (table.runs.empty()) return over;  // nothing recorded yet: no groups, not an error
  const auto layout = layout_of(table);
  const auto over_column = axis_column(layout, options.over, "--over");

  if (layout.sweep) over.columns.push_back(table.columns[*layout.sweep]);
  for (const auto c : layout.axes) {
    if (c != over_column) over.columns.push_back(table.columns[c]);
  }
  over.columns.push_back({"runs", ReportColumnKind::integer, ""});
  over.label_columns = over.columns.size();
  for (const auto c : layout.metrics) over.columns.push_back(table.columns[c]);

  std::unordered_map<std::string, std::size_t> group_of;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const auto [it, added] =
        group_of.try_emplace(group_key(table, layout, r, over_column), over.members.size());
    if (added) over.members.emplace_back();
    over.members[it->second].push_back(r);
  }
  for (const auto& members : over.members) {
    const auto& first = table.rows[members.front()];
    auto& labels = over.labels.emplace_back();
    if (layout.sweep) labels.push_back(first[*layout.sweep]);
    for (const auto c : layout.axes) {
      if (c != over_column) labels.push_back(first[c]);
    }
    labels.emplace_back(members.size());
    auto& values = over.values.emplace_back();
    for (const auto c : layout.metrics) {
      std::vector<double> column;
      for (const auto r : members) {
        if (table.rows[r][c].is_number()) column.push_back(table.rows[r][c].get<double>());
      }
      values.push_back(summarize(column, options.interval));
    }
  }
  return over;
}

CompareTable make_compare_table(const ReportTable& table, const ReportOptions& options) {
  refuse_all_checkpoints(options, "--compare");
  const auto& compare = options.compare;
  CompareTable out;
  out.compare = compare;
  out.interval = options.interval;
  if (table.runs.empty()) return out;  // nothing recorded yet: no pairs, not an error
  const auto layout = layout_of(table);
  const auto axis = axis_column(layout, compare.axis, "--compare");

  // The rows with either value, by the rest of their identity; the values the axis has.
  std::vector<std::string> values;
  std::map<std::string, std::pair<std::optional<std::size_t>, std::optional<std::size_t>>> sides;
  std::vector<std::string> order;  // keys in the order of their first row
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const auto& cell = table.rows[r][axis];
    if (cell.is_null()) continue;
    const auto text = report_cell_text(cell, ReportColumnKind::axis, false);
    if (std::find(values.begin(), values.end(), text) == values.end()) values.push_back(text);
    if (text != compare.a && text != compare.b) continue;
    const auto key = group_key(table, layout, r, axis);
    auto [it, added] = sides.try_emplace(key);
    if (added) order.push_back(key);
    auto& side = text == compare.a ? it->second.first : it->second.second;
    if (!side) side = r;  // the first of duplicates
  }
  for (const auto* value : {&compare.a, &compare.b}) {
    if (std::find(values.begin(), values.end(), *value) != values.end()) continue;
    std::string message = "--compare: no run shown has " + compare.axis + " = " + *value;
    // A number's nearest spelling is no guess at what was meant (7 is not 0 mistyped).
    char* end = nullptr;
    if (!value->empty()) std::strtod(value->c_str(), &end);
    const bool number = end && *end == '\0';
    if (auto guess = number ? "" : did_you_mean(*value, values); !guess.empty()) {
      message += " (did you mean '" + guess + "'?)";
    }
    throw InputError(message + "; values of " + compare.axis + ": " + listed(values));
  }
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (const auto& key : order) {
    const auto& [a, b] = sides[key];
    if (a && b) pairs.emplace_back(*a, *b);
  }
  if (pairs.empty()) {
    throw InputError("--compare " + compare.axis + "=" + compare.a + "," + compare.b +
                     ": no pairs: no run with " + compare.axis + " = " + compare.a +
                     " agrees with one with " + compare.axis + " = " + compare.b +
                     " on every other axis");
  }
  out.pairs = pairs.size();

  auto run_name = [&](std::size_t row) {
    return "run " + std::to_string(table.runs[table.row_run[row]].grid_index);
  };
  std::string refusals;
  // The metric columns of one key (a metric, variant and sampler) are adjacent: one per protocol.
  for (std::size_t begin = 0; begin < layout.metrics.size();) {
    std::size_t end = begin;
    const auto& key = table.columns[layout.metrics[begin]].key;
    while (end < layout.metrics.size() && table.columns[layout.metrics[end]].key == key) ++end;
    // The column of the key where a row has its value, if any.
    auto value_column = [&](std::size_t row) -> std::optional<std::size_t> {
      for (std::size_t i = begin; i < end; ++i) {
        if (!table.rows[row][layout.metrics[i]].is_null()) return i;
      }
      return std::nullopt;
    };
    std::vector<std::vector<double>> differences(end - begin);
    std::string refused;
    for (const auto& [a, b] : pairs) {
      const auto ca = value_column(a), cb = value_column(b);
      if (!ca || !cb) continue;
      if (*ca != *cb) {
        if (refused.empty()) {
          refused = "--compare: " + key + " of " + run_name(a) + " and " + run_name(b) +
                    " were measured under different protocols (" +
                    protocol_difference(table.columns[layout.metrics[*ca]].protocol,
                                        table.columns[layout.metrics[*cb]].protocol) +
                    ")";
        }
        continue;
      }
      const auto column = layout.metrics[*ca];
      differences[*ca - begin].push_back(table.rows[b][column].get<double>() -
                                         table.rows[a][column].get<double>());
    }
    if (!refused.empty()) {
      auto column = table.columns[layout.metrics[begin]];
      column.header = key;
      column.protocol.clear();
      out.rows.push_back({column, IntervalSummary{}, refused});
      refusals += refused + "\n";
    } else {
      for (std::size_t i = begin; i < end; ++i) {
        out.rows.push_back({table.columns[layout.metrics[i]],
                            summarize(differences[i - begin], options.interval), ""});
      }
    }
    begin = end;
  }
  out.caption = "difference: " + compare.axis + " = " + compare.b + " minus " + compare.axis +
                " = " + compare.a + ", in each of " + std::to_string(out.pairs) +
                (out.pairs == 1 ? " pair" : " pairs") +
                " of runs that agree on every other axis\n" + interval_words(options.interval) +
                " over the pairs; s: the differences' standard deviation (n - 1); n: pairs with both values\n" + "* the interval excludes 0\n" +
                refusals + table.footer;
  return out;
}

}  // namespace difflab
