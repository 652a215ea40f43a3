// render_report: the store's runs as one table (plain text, markdown, CSV or JSON), or its
// --by-nfe pivot, --over groups or --compare pairs; the table itself is made in report_table.cpp,
// the groups and pairs in report_summary.cpp, the HTML page in report_html.cpp.
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
    if (kind == ColumnKind::metric || kind == ColumnKind::number)
      return general_double(v, full ? 17 : 4);
    return compact_double(v);
  }
  return value.dump();  // arrays and objects given as axis values
}

std::string summary_cell_text(const IntervalSummary& summary, ReportInterval interval) {
  if (summary.n == 0) return "";
  const auto mean = general_double(summary.mean, 4);
  if (!summary.has_interval()) return mean + " (n=" + std::to_string(summary.n) + ")";
  const auto n = " (s=" + general_double(summary.stddev, 4) + ", n=" + std::to_string(summary.n) + ")";
  if (interval == ReportInterval::t) {
    return mean + " ± " + general_double((summary.ci_high - summary.ci_low) / 2, 4) + n;
  }
  return mean + " [" + general_double(summary.ci_low, 4) + ", " +
         general_double(summary.ci_high, 4) + "]" + n;
}

namespace {

std::string cell_text(const Json& value, ColumnKind kind, bool full) {
  return report_cell_text(value, kind, full);
}

// Columns a cell takes in a terminal: UTF-8 continuation bytes take none ("±" is two bytes).
std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  for (const char c : text) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return width;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

std::string render_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<Json>>& rows) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& c : columns) widths.push_back(display_width(c.header));
  for (const auto& row : rows) {
    auto& line = cells.emplace_back();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      std::string text =
          row[i].is_null() ? "-" : one_line(cell_text(row[i], columns[i].kind, false));
      if (columns[i].header == "reason" && text.size() > kTableReasonWidth) {
        text = text.substr(0, kTableReasonWidth - 3) + "...";
      }
      widths[i] = std::max(widths[i], display_width(text));
      line.push_back(std::move(text));
    }
  }
  auto emit = [&](const std::vector<std::string>& texts, std::string& out) {
    std::string line;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::string pad(widths[i] - display_width(texts[i]), ' ');
      if (i > 0) line += "  ";
      line += report_numeric(columns[i].kind) ? pad + texts[i] : texts[i] + pad;
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
  for (const auto& c : columns) out += report_numeric(c.kind) ? " ---: |" : " --- |";
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

// The pivot as one object: its NFE columns once, each row's labels and values in their order.
std::string render_nfe_json(const NfePivot& pivot) {
  Json rows = Json::array();
  for (const auto& row : pivot.rows) {
    Json object = Json::object(), values = Json::array();
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i < pivot.label_columns) {
        object[pivot.columns[i].header] = row[i];
      } else {
        values.push_back(row[i]);
      }
    }
    object["values"] = std::move(values);
    rows.push_back(std::move(object));
  }
  const Json out = {
      {"metric", pivot.metric},
      {"better", pivot.rows.empty() ? Json() : Json(pivot.higher_is_better ? "higher" : "lower")},
      {"nfe", pivot.nfe},
      {"rows", rows}};
  return out.dump(2) + "\n";
}

const char* interval_name(ReportInterval interval) {
  return interval == ReportInterval::t ? "t" : "bootstrap";
}

Json number_or_null(double value) { return std::isfinite(value) ? Json(value) : Json(); }

Json summary_json(const IntervalSummary& s) {
  Json out = Json::object();
  out["mean"] = number_or_null(s.mean);
  out["std"] = number_or_null(s.stddev);
  out["n"] = s.n;
  out["ci_low"] = number_or_null(s.ci_low);
  out["ci_high"] = number_or_null(s.ci_high);
  return out;
}

Json summary_text_cell(const IntervalSummary& s, ReportInterval interval) {
  return s.n == 0 ? Json() : Json(summary_cell_text(s, interval));
}

// --over in tables and markdown: a cell of text per metric column, then the caption.
std::string render_over_text(const OverTable& over, bool markdown) {
  std::vector<std::vector<Json>> rows;
  for (std::size_t r = 0; r < over.labels.size(); ++r) {
    auto row = over.labels[r];
    for (const auto& s : over.values[r]) row.push_back(summary_text_cell(s, over.interval));
    rows.push_back(std::move(row));
  }
  return (markdown ? render_markdown(over.columns, rows) : render_table(over.columns, rows)) +
         "\n" + over.caption;
}

// --over in CSV: the label columns, then H.mean, H.std, H.n, H.ci_low, H.ci_high per column H.
std::string render_over_csv(const OverTable& over) {
  std::vector<Column> columns(over.columns.begin(),
                              over.columns.begin() + static_cast<std::ptrdiff_t>(over.label_columns));
  for (std::size_t c = over.label_columns; c < over.columns.size(); ++c) {
    const auto& column = over.columns[c];
    for (const char* field : {"mean", "std", "n", "ci_low", "ci_high"}) {
      auto part = column;
      part.header += std::string(".") + field;
      if (std::string(field) == "n") part.kind = ColumnKind::integer;
      columns.push_back(std::move(part));
    }
  }
  std::vector<std::vector<Json>> rows;
  for (std::size_t r = 0; r < over.labels.size(); ++r) {
    auto row = over.labels[r];
    for (const auto& s : over.values[r]) {
      const auto fields = summary_json(s);
      for (const auto& field : fields) row.push_back(field);
    }
    rows.push_back(std::move(row));
  }
  return render_csv(columns, rows);
}

std::string render_over_json(const OverTable& over) {
  Json rows = Json::array();
  for (std::size_t r = 0; r < over.labels.size(); ++r) {
    Json object = Json::object();
    for (std::size_t c = 0; c < over.label_columns; ++c)
      object[over.columns[c].header] = over.labels[r][c];
    for (std::size_t i = 0; i < over.values[r].size(); ++i)
      object[over.columns[over.label_columns + i].header] = summary_json(over.values[r][i]);
    rows.push_back(std::move(object));
  }
  Json out = Json::object();
  out["over"] = over.axis;
  out["interval"] = interval_name(over.interval);
  out["confidence"] = kReportConfidence;
  out["rows"] = std::move(rows);
  return out.dump(2) + "\n";
}

// --compare in tables and markdown: a row per metric column, its difference marked when the
// interval excludes 0, then the caption.
std::string render_compare_text(const CompareTable& compare, bool markdown) {
  const std::vector<Column> columns = {
      {"metric", ColumnKind::text, ""},
      {"difference (" + compare.compare.b + " - " + compare.compare.a + ")", ColumnKind::metric,
       ""}};
  std::vector<std::vector<Json>> rows;
  for (const auto& row : compare.rows) {
    Json cell;
    if (!row.refused.empty()) {
      cell = "refused: different protocols";
    } else if (row.difference.n > 0) {
      cell = summary_cell_text(row.difference, compare.interval) +
             (row.difference.excludes_zero() ? " *" : "");
    }
    rows.push_back({row.column.header, cell});
  }
  return (markdown ? render_markdown(columns, rows) : render_table(columns, rows)) + "\n" +
         compare.caption;
}

std::string render_compare_csv(const CompareTable& compare) {
  std::vector<Column> columns = {{"metric", ColumnKind::text, ""}};
  for (const char* field : {"mean", "std", "n", "ci_low", "ci_high"}) {
    columns.push_back({field, std::string(field) == "n" ? ColumnKind::integer : ColumnKind::metric,
                       ""});
  }
  columns.push_back({"excludes_zero", ColumnKind::text, ""});
  columns.push_back({"refused", ColumnKind::text, ""});
  std::vector<std::vector<Json>> rows;
  for (const auto& r : compare.rows) {
    std::vector<Json> row = {r.column.header};
    const auto fields = summary_json(r.difference);
    for (const auto& field : fields) row.push_back(field);
    row.emplace_back(r.difference.excludes_zero());
    row.push_back(r.refused.empty() ? Json() : Json(r.refused));
    rows.push_back(std::move(row));
  }
  return render_csv(columns, rows);
}

std::string render_compare_json(const CompareTable& compare) {
  Json metrics = Json::array();
  for (const auto& r : compare.rows) {
    Json object = {{"metric", r.column.header}};
    const auto fields = summary_json(r.difference);
    for (const auto& item : fields.items()) object[item.key()] = item.value();
    object["excludes_zero"] = r.difference.excludes_zero();
    object["refused"] = r.refused.empty() ? Json() : Json(r.refused);
    metrics.push_back(std::move(object));
  }
  Json out = Json::object();
  out["compare"] = compare.compare.axis;
  out["a"] = compare.compare.a;
  out["b"] = compare.compare.b;
  out["difference"] = compare.compare.b + " - " + compare.compare.a;
  out["interval"] = interval_name(compare.interval);
  out["confidence"] = kReportConfidence;
  out["pairs"] = compare.pairs;
  out["metrics"] = std::move(metrics);
  return out.dump(2) + "\n";
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
  throw InputError(message + "; expected final, best, all, step=N or epoch=N");
}

CheckpointSelection parse_checkpoint_selection(const std::string& text) {
  for (const auto& [prefix, choice] :
       {std::pair{std::string("step="), CheckpointChoice::step},
        std::pair{std::string("epoch="), CheckpointChoice::epoch}}) {
    if (text.rfind(prefix, 0) != 0) continue;
    const auto number = text.substr(prefix.size());
    std::int64_t at = -1;
    const auto end = number.data() + number.size();
    const auto [ptr, error] = std::from_chars(number.data(), end, at);
    if (number.empty() || error != std::errc() || ptr != end || at < 0) {
      throw InputError("--checkpoint " + text + ": expected a whole number >= 0 after '" +
                       prefix + "' (e.g. --checkpoint " + prefix + "1000)");
    }
    return {choice, at};
  }
  return {parse_checkpoint_choice(text), 0};
}

ReportInterval parse_report_interval(const std::string& name) {
  if (name == "t") return ReportInterval::t;
  if (name == "bootstrap") return ReportInterval::bootstrap;
  std::string message = "unknown interval '" + name + "'";
  if (auto guess = did_you_mean(name, {"t", "bootstrap"}); !guess.empty()) {
    message += " (did you mean '" + guess + "'?)";
  }
  throw InputError(message + "; expected t (Student t, the default) or bootstrap");
}

ReportComparison parse_report_comparison(const std::string& text) {
  const auto usage = "; expected AXIS=A,B with two values of one axis (e.g. --compare "
                     "schedule.plugin=linear,cosine_beta)";
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError("--compare " + text + ": no axis" + usage);
  }
  ReportComparison compare;
  compare.axis = text.substr(0, eq);
  // Values split at commas outside brackets, so that a list value such as [1, 2] stays whole.
  std::vector<std::string> values(1);
  int depth = 0;
  for (std::size_t i = eq + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '[' || c == '{' || c == '(') ++depth;
    if (c == ']' || c == '}' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      values.emplace_back();
    } else {
      values.back() += c;
    }
  }
  const bool any_empty = std::any_of(values.begin(), values.end(),
                                     [](const std::string& v) { return v.empty(); });
  if (values.size() != 2 || any_empty) {
    throw InputError("--compare " + text + ": " +
                     (any_empty ? std::string("an empty value")
                                : std::to_string(values.size()) + " values") +
                     usage);
  }
  if (values[0] == values[1]) {
    throw InputError("--compare " + text + ": the two values are the same" + usage);
  }
  compare.a = values[0];
  compare.b = values[1];
  return compare;
}

void check_report_options(const ReportOptions& options) {
  const bool over = !options.over.empty(), compare = !options.compare.axis.empty();
  if (over && compare) {
    throw InputError("--over and --compare cannot be combined: give one of them");
  }
  if ((over || compare) && !options.by_nfe.empty()) {
    throw InputError(std::string(over ? "--over" : "--compare") +
                     " cannot be combined with --by-nfe: give one of them");
  }
  if ((over || compare) && options.checkpoint == CheckpointChoice::all) {
    throw InputError(std::string(over ? "--over" : "--compare") +
                     " takes one checkpoint per run: use it with --checkpoint final, best, "
                     "step=N or epoch=N, not all");
  }
}

std::string render_report(const RunStore& store, const ReportOptions& options) {
  check_report_options(options);
  const auto table = make_report_table(store, options);
  const auto no_runs =
      "no runs recorded in " + store.path() +
      (options.sweep.empty() ? std::string() : " for sweep '" + options.sweep + "'") + "\n";
  const bool markdown = options.format == ReportFormat::markdown;
  if (!options.over.empty() && options.format != ReportFormat::html) {
    const auto over = make_over_table(table, options);
    if (options.format == ReportFormat::json) return render_over_json(over);
    if (table.runs.empty()) return options.format == ReportFormat::csv ? "" : no_runs;
    if (options.format == ReportFormat::csv) return render_over_csv(over);
    return render_over_text(over, markdown);
  }
  if (!options.compare.axis.empty() && options.format != ReportFormat::html) {
    const auto compare = make_compare_table(table, options);
    if (options.format == ReportFormat::json) return render_compare_json(compare);
    if (table.runs.empty()) return options.format == ReportFormat::csv ? "" : no_runs;
    if (options.format == ReportFormat::csv) return render_compare_csv(compare);
    return render_compare_text(compare, markdown);
  }
  if (!options.by_nfe.empty() && options.format != ReportFormat::html) {
    const auto pivot = make_nfe_pivot(table, options.by_nfe, options.checkpoint);
    if (options.format == ReportFormat::json) return render_nfe_json(pivot);
    if (table.runs.empty()) return options.format == ReportFormat::csv ? "" : no_runs;
    if (options.format == ReportFormat::csv) return render_csv(pivot.columns, pivot.rows);
    return (options.format == ReportFormat::markdown ? render_markdown(pivot.columns, pivot.rows)
                                                     : render_table(pivot.columns, pivot.rows)) +
           "\n" + pivot.caption + "\n" + table.footer;
  }
  if (table.runs.empty() && options.format != ReportFormat::html) {
    if (options.format == ReportFormat::json) return "[]\n";
    if (options.format == ReportFormat::csv) return "";
    return no_runs;
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
