// render_report: the store's runs as one table (plain text, markdown, CSV or JSON); the table
// itself is made in report_table.cpp, the HTML page in report_html.cpp.
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

namespace {

std::string cell_text(const Json& value, ColumnKind kind, bool full) {
  return report_cell_text(value, kind, full);
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

std::string render_report(const RunStore& store, const ReportOptions& options) {
  const auto table = make_report_table(store, options);
  const auto no_runs =
      "no runs recorded in " + store.path() +
      (options.sweep.empty() ? std::string() : " for sweep '" + options.sweep + "'") + "\n";
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
