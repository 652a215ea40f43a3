// Hidden ([.report-speed]): `runner report` on a store of 10,000 runs x 100 checkpoints with metrics.
// Run: build/tests/difflab_tests "[.report-speed]" (builds the store once, ~1-2 min; prints times).
#include <chrono>
#include <iostream>

#include <catch2/catch.hpp>

#include "report.hpp"
#include "run_store.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {
constexpr int kRuns = 10000;
constexpr int kCheckpoints = 100;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The schedule study's rows at scale: test_loss, then mmd and wasserstein for two samplers.
void build_store(const std::string& path) {
  RunStore store(path);
  store.transaction([&] {
    const auto sweep = store.add_sweep("big", "big.yaml", "name: big\n");
    const std::vector<std::string> samplers{"ddpm", "ddim(steps=50,eta=0)"};
    for (int r = 0; r < kRuns; ++r) {
      RunRecord run;
      run.sweep_id = sweep;
      run.grid_index = r;
      run.config_json = "{}";
      run.config_hash = "hash" + std::to_string(r);
      run.train_hash = run.config_hash;
      run.axes_json = R"({"schedule.plugin":"linear","seed":)" + std::to_string(r) + "}";
      run.seed = r;
      run.id = store.add_run(run);
      for (int c = 1; c <= kCheckpoints; ++c) {
        CheckpointRecord checkpoint{0, run.id, c * 10, c * 100, "runs/ck.pt", double(c), "model"};
        const auto id = store.add_checkpoint(checkpoint);
        store.add_metric({id, "", "{}", "test_loss", "mse(prediction=epsilon,repeats=4,timesteps=all)", 1.0 / c});
        for (const auto& s : samplers) {
          store.add_metric({id, s, R"({"plugin":"ddpm"})", "mmd", "rbf(bandwidths=0.1,0.2,0.5,1,2,5)", 0.01 * r / c});
          store.add_metric({id, s, R"({"plugin":"ddpm"})", "wasserstein", "exact", 0.1 + double(r % 7) / c});
        }
      }
      store.mark_done(run.id, 10.0, 5.0);
    }
  });
}
}  // namespace

TEST_CASE("runner report on 10,000 runs x 100 checkpoints", "[.report-speed]") {
  const auto dir = test::temp_dir("report-speed");
  const auto db = (dir / "big.sqlite").string();
  auto start = std::chrono::steady_clock::now();
  build_store(db);
  std::cout << "built " << kRuns << " runs x " << kCheckpoints << " checkpoints x 5 metrics in "
            << seconds_since(start) << " s\n";
  for (const auto* choice : {"final", "best", "all"}) {
    std::string output;
    start = std::chrono::steady_clock::now();
    const int status = test::run_command(test::runner_path() + " report --db " + db + " --checkpoint " +
                                             choice + " --format csv > " + (dir / "out.csv").string(),
                                         &output);
    const double seconds = seconds_since(start);
    CHECK(status == 0);
    std::cout << "runner report --checkpoint " << choice << ": " << seconds << " s\n";
    if (std::string(choice) == "final") CHECK(seconds < 1.0);
  }
}
