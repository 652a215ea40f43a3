#pragma once
// Reading a rendered HTML report in the report tests: counting a string, and the data the page's
// charts draw.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace difflab::test {

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
