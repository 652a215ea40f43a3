// Hidden ([.report-speed]): `runner report` on a store of 10,000 runs x 100 checkpoints with metrics.
// Run: build/tests/difflab_tests "[.report-speed]" (builds the store in ~40 s; prints the times).
#include <chrono>
#include <iostream>

#include <catch2/catch.hpp>

#include "support.hpp"

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

TEST_CASE("runner report on 10,000 runs x 100 checkpoints", "[.report-speed]") {
  const auto dir = difflab::test::temp_dir("report-speed");
  const auto db = (dir / "big.sqlite").string();
  difflab::test::BigStore shape;  // the schedule study's rows at scale: 5 values a checkpoint
  shape.runs = 10000;
  shape.checkpoints = 100;
  auto start = std::chrono::steady_clock::now();
  difflab::test::make_big_store(db, shape);
  std::cout << "built " << shape.runs << " runs x " << shape.checkpoints << " checkpoints x 5 metrics in "
            << seconds_since(start) << " s\n";
  for (const auto* choice : {"final", "best", "all"}) {
    std::string output;
    start = std::chrono::steady_clock::now();
    const int status = difflab::test::run_command(difflab::test::runner_path() + " report --db " + db +
                                                      " --checkpoint " + choice + " --format csv > " +
                                                      (dir / "out.csv").string(),
                                                  &output);
    const double seconds = seconds_since(start);
    CHECK(status == 0);
    std::cout << "runner report --checkpoint " << choice << ": " << seconds << " s\n";
    if (std::string(choice) != "all") CHECK(seconds < 1.0);
  }
  std::filesystem::remove_all(dir);
}
