// Every file in tests/fixtures/bad_sweeps must be refused by `runner validate` with exit code 2
// and one line that contains each '|'-separated word of its first-line "# expect:" comment.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "support.hpp"

namespace fs = std::filesystem;

TEST_CASE("runner validate refuses each bad sweep file with exit 2 and a one-line reason", "[cli]") {
  const fs::path dir = fs::path(DIFFLAB_SOURCE_DIR) / "tests/fixtures/bad_sweeps";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 30);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string first;
    std::getline(in, first);
    REQUIRE(first.rfind("# expect: ", 0) == 0);
    std::string output;
    const int code = difflab::test::run_command(
        difflab::test::runner_path() + " validate " + file.string(), &output);
    INFO(file.filename().string() << ": " << output);
    CHECK(code == 2);
    CHECK(std::count(output.begin(), output.end(), '\n') == 1);
    std::stringstream words(first.substr(10));
    std::string word;
    while (std::getline(words, word, '|')) CHECK_THAT(output, Catch::Contains(word));
  }
}
