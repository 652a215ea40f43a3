#pragma once
// Rendering a store's report and reading a rendered HTML report in the report tests: counting a
// string, and the data the page's charts draw.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "report/report.hpp"
#include "store/run_store.hpp"

namespace difflab::test {

// The report of the store at `path`, opened read-only as `runner report` opens it.
inline std::string render_store(const std::string& path, const ReportOptions& options) {
  RunStore store(path, RunStore::Access::read_only);
  return render_report(store, options);
}

inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The data the page's charts draw: the JSON in <script id="difflab-data">.
inline nlohmann::json page_data(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"difflab-data\">";
  const auto begin = html.find(open);
  REQUIRE(begin != std::string::npos);
  const auto end = html.find("</script>", begin);
  return nlohmann::json::parse(html.substr(begin + open.size(), end - begin - open.size()));
}

}  // namespace difflab::test
