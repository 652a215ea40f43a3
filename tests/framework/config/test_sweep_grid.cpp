#include <chrono>
#include <fstream>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "support.hpp"
#include "config/sweep_grid.hpp"

using namespace difflab;

namespace {

const char* kBase = R"(name: grid_test
seed: 3
device: cpu
dataset:  {plugin: gmm2d, components: 4, train_size: 256, test_size: 64}
model:    {plugin: mlp, hidden: 16, layers: 1, time_embedding: 8}
schedule: {plugin: linear, timesteps: 50, beta_start: 1.0e-4, beta_end: 0.02}
train:    {epochs: 2, batch_size: 64, lr: 1.0e-3, checkpoint_every: 1}
evaluation:
  num_samples: 32
  samplers: [{plugin: ddpm}, {plugin: ddim, steps: 10, eta: 0.0}]
  metrics:  [{plugin: test_loss}, {plugin: mmd}]
sweep:
  schedule.plugin: [linear, cosine_beta, quadratic]
  seed: [0, 1]
)";

std::string write(const std::string& text) {
  const auto path = test::temp_dir("grid") / "sweep.yaml";
  std::ofstream(path) << text;
  return path.string();
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// The InputError message of loading `text` (fails the test if it loads).
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    load_sweep(write(text), overrides, test::plugins());
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("the sweep loaded without error");
  return "";
}

}  // namespace

TEST_CASE("a sweep expands to the cartesian product of its axes, first axis outermost", "[sweep]") {
  const auto grid = load_sweep(write(kBase), {}, test::plugins());
  CHECK(grid.name == "grid_test");
  REQUIRE(grid.runs.size() == 6);
  CHECK(grid.axes == std::vector<std::string>{"schedule.plugin", "seed"});
  CHECK(grid.runs[0].schedule.plugin == "linear");
  CHECK(grid.runs[0].seed == 0);
  CHECK(grid.runs[1].schedule.plugin == "linear");
  CHECK(grid.runs[1].seed == 1);
  CHECK(grid.runs[5].schedule.plugin == "quadratic");
  CHECK(grid.runs[5].axes["seed"] == 1);
  CHECK(grid.runs[2].axes["schedule.plugin"] == "cosine_beta");
  std::set<std::string> hashes;
  for (const auto& r : grid.runs) hashes.insert(r.config_hash);
  CHECK(hashes.size() == 6);
  // Options are resolved with defaults, and labels show what the user set.
  CHECK(grid.runs[0].schedule.options.real("beta_end") == Approx(0.02));
  CHECK(grid.runs[0].model.options.integer("hidden") == 16);
  CHECK(grid.runs[0].train.epochs == 2);
  CHECK(grid.runs[0].evaluation.samplers[1].label == "ddim(steps=10,eta=0)");
  CHECK(grid.runs[0].evaluation.samplers[0].label == "ddpm");
  // The same file gives the same identities.
  const auto again = load_sweep(write(kBase), {}, test::plugins());
  CHECK(again.runs[3].config_hash == grid.runs[3].config_hash);
}

TEST_CASE("runs that differ only in evaluation share a training hash", "[sweep]") {
  const auto text = replace(kBase, "  schedule.plugin: [linear, cosine_beta, quadratic]\n  seed: [0, 1]\n",
                            "  evaluation.num_samples: [16, 32]\n");
  const auto grid = load_sweep(write(text), {}, test::plugins());
  REQUIRE(grid.runs.size() == 2);
  CHECK(grid.runs[0].train_hash == grid.runs[1].train_hash);
  CHECK(grid.runs[0].config_hash != grid.runs[1].config_hash);
}

TEST_CASE("set overrides keys, replaces axes and defines new ones", "[sweep]") {
  const auto grid = load_sweep(write(kBase), {"train.lr=0.01", "seed=7", "sweep.model.hidden=[8, 32]"},
                               test::plugins());
  REQUIRE(grid.runs.size() == 6);  // 3 schedules x 2 widths; the seed axis is gone
  CHECK(grid.runs[0].train.lr == Approx(0.01));
  CHECK(grid.runs[0].seed == 7);
  CHECK(grid.runs[1].model.options.integer("hidden") == 32);
}

TEST_CASE("sweep errors name the file, line, column, key and a suggestion", "[sweep]") {
  using Catch::Contains;
  CHECK_THAT(error_of(replace(kBase, "schedule: {", "schedual: {")),
             Contains("sweep.yaml:6:1: schedual: unknown key 'schedual' (did you mean 'schedule'?)"));
  CHECK_THAT(error_of(replace(kBase, "hidden: 16", "hiden: 16")),
             Contains(":5:25: model.hiden: unknown key 'hiden' (did you mean 'hidden'?)"));
  CHECK_THAT(error_of(replace(kBase, "lr: 1.0e-3", "lr: fast")),
             Contains(":7:43: train.lr: expected a number, got 'fast'"));
  CHECK_THAT(error_of(replace(kBase, "lr: 1.0e-3", "lr: -1")), Contains("train.lr: must be > 0, got -1"));
  CHECK_THAT(error_of(replace(kBase, "beta_end: 0.02", "beta_end: 1.5")),
             Contains("schedule.beta_end: must be < 1, got 1.5"));
  CHECK_THAT(error_of(replace(kBase, "timesteps: 50", "timesteps: 0")),
             Contains("schedule.timesteps: must be >= 1, got 0"));
  CHECK_THAT(error_of(replace(kBase, "timesteps: 50", "timesteps: 2.5")),
             Contains("schedule.timesteps: expected an integer, got '2.5'"));
  CHECK_THAT(error_of(replace(kBase, "[linear, cosine_beta", "[linear, cosine_bta")),
             Contains(":13:29: schedule.plugin: unknown schedule plugin 'cosine_bta' (did you mean 'cosine_beta'?)"));
  CHECK_THAT(error_of(replace(kBase, "{plugin: mmd}", "{plugin: mdm}")),
             Contains("evaluation.metrics[1].plugin: unknown metric plugin 'mdm' (did you mean 'mmd'?)"));
  CHECK_THAT(error_of(replace(kBase, "device: cpu", "device: gpu")), Contains("device: unknown device 'gpu'"));
  CHECK_THAT(error_of(replace(kBase, "  seed: [0, 1]\n", "  sede: [0, 1]\n")),
             Contains(":14:3: sweep.sede: unknown key 'sede' (did you mean 'seed'?)"));
  CHECK_THAT(error_of(replace(kBase, "  seed: [0, 1]\n", "  seed: []\n")),
             Contains("sweep.seed: an axis needs a non-empty list of values"));
  CHECK_THAT(error_of(replace(kBase, "  num_samples: 32", "  num_samples: [32")),
             Contains("sweep.yaml:10:11: invalid YAML"));
  CHECK_THAT(error_of(kBase, {"train.lr=-3"}), Contains("--set train.lr=-3: train.lr: must be > 0"));
  CHECK_THAT(error_of(kBase, {"train.lr"}), Contains("expected KEY=VALUE"));
  CHECK_THAT(error_of(replace(kBase, "name: grid_test\n", "")), Contains("the sweep needs a name"));
  CHECK_THROWS_WITH(load_sweep("/nonexistent/sweep.yaml", {}, test::plugins()),
                    Contains("/nonexistent/sweep.yaml: cannot read the sweep file"));
}

TEST_CASE("load_sweep_text reads a sweep from memory and names it as given", "[sweep]") {
  const auto grid = load_sweep_text(kBase, "in-memory.yaml", {}, test::plugins());
  CHECK(grid.file == "in-memory.yaml");
  CHECK(grid.text == kBase);
  REQUIRE(grid.runs.size() == 6);
  const auto from_file = load_sweep(write(kBase), {}, test::plugins());
  CHECK(grid.runs[4].config_hash == from_file.runs[4].config_hash);
  const auto typo = replace(kBase, "schedule: {", "schedual: {");
  CHECK_THROWS_WITH(load_sweep_text(typo, "in-memory.yaml", {}, test::plugins()),
                    Catch::Contains("in-memory.yaml:6:1: schedual: unknown key"));
  CHECK_THROWS_WITH(load_sweep_text(kBase, "in-memory.yaml", {}, test::plugins(), 5),
                    Catch::Contains("has a grid of 6 points (3 (schedule.plugin) x 2 (seed)), "
                                    "more than the 5 a sweep may have"));
}

// A sweep without `train:` failed with yaml-cpp's "invalid node" (exit 1), not taking defaults.
TEST_CASE("the train and evaluation sections may be left out for their defaults", "[sweep]") {
  const auto text = R"(name: defaults
dataset:  {plugin: gmm2d}
model:    {plugin: mlp}
schedule: {plugin: linear}
)";
  const auto grid = load_sweep_text(text, "defaults.yaml", {}, test::plugins());
  REQUIRE(grid.runs.size() == 1);
  CHECK(grid.runs[0].train.epochs == 100);
  CHECK(grid.runs[0].train.batch_size == 1280);
  CHECK(grid.runs[0].train.optimizer == "adam");
  CHECK(grid.runs[0].evaluation.num_samples == 2000);
  CHECK(grid.runs[0].evaluation.samplers.empty());
  CHECK(grid.runs[0].device == "auto");
}

// Found by fuzzing and probing `runner validate`: each used to crash or to exit 1 (not 2).
TEST_CASE("oversized values are refused as input errors, not crashes", "[sweep]") {
  using Catch::Contains;
  const auto refuse = [](const std::string& text) {
    try {
      load_sweep_text(text, "sweep.yaml", {}, test::plugins());
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    FAIL("the sweep loaded without error");
    return std::string();
  };
  // std::regex recursed once per character: a 1 MB name or device overflowed the stack.
  CHECK_THAT(refuse(replace(kBase, "name: grid_test", "name: " + std::string(1 << 20, 'n'))),
             Contains("more than 200"));
  CHECK_THAT(refuse(replace(kBase, "device: cpu", "device: cuda:" + std::string(1 << 20, '7'))),
             Contains("is out of range"));
  // torch's Device parser threw c10::Error for these, or wrapped an index beyond an int8.
  CHECK_THAT(refuse(replace(kBase, "device: cpu", "device: cuda:128")),
             Contains("device index 128 is out of range (0 to 127)"));
  CHECK_THAT(refuse(replace(kBase, "device: cpu", "device: cuda:007")),
             Contains("unknown device 'cuda:007' (expected auto, cpu, cuda or cuda:N)"));
  // A list as a key was a YAML::BadConversion.
  CHECK_THAT(refuse(replace(kBase, "{epochs: 2,", "{[epochs]: 2,")),
             Contains("sweep.yaml:7:12: train: expected a plain key, got a list used as a key"));
  CHECK_THAT(refuse(replace(kBase, "  seed: [0, 1]", "  {seed: 1}: [0, 1]")),
             Contains("sweep: expected a plain key, got a map used as a key"));
  // A grid size beyond 64 bits wrapped around; now any grid above 100000 points is refused.
  std::string axes;
  for (int i = 0; i < 70; ++i) axes += "  seed.x" + std::to_string(i) + ": [0, 1]\n";
  CHECK_THAT(refuse(replace(kBase, "  seed: [0, 1]\n", axes)),
             Contains("sweep 'grid_test' has a grid of more than 2^64 points"));
  std::string seeds, widths;
  for (int i = 0; i < 400; ++i) seeds += (i ? ", " : "") + std::to_string(i);
  for (int i = 1; i <= 100; ++i) widths += (i > 1 ? ", " : "") + std::to_string(i);
  CHECK_THAT(refuse(replace(kBase, "  seed: [0, 1]\n",
                            "  seed: [" + seeds + "]\n  model.hidden: [" + widths + "]\n")),
             Contains("sweep 'grid_test' has a grid of 120000 points (3 (schedule.plugin) x "
                      "400 (seed) x 100 (model.hidden)), more than the 100000 a sweep may have"));
}

// Every point used to assign its axis values from one shared YAML document, which merged that
// document's growing memory into each point: 1000 points took 30 s, 3000 several minutes.
TEST_CASE("a grid of 3000 points loads in linear time", "[sweep]") {
  std::string seeds;
  for (int i = 0; i < 1000; ++i) seeds += (i ? ", " : "") + std::to_string(i);
  const auto text = replace(kBase, "  seed: [0, 1]\n", "  seed: [" + seeds + "]\n");
  const auto start = std::chrono::steady_clock::now();
  const auto grid = load_sweep_text(text, "big.yaml", {}, test::plugins());
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  REQUIRE(grid.runs.size() == 3000);
  CHECK(grid.runs[2999].axes["seed"] == 999);
  CHECK(grid.runs[2999].schedule.plugin == "quadratic");
  CHECK(took.count() < 60);  // ~2 s with gcc, ~10 s under ASan
}

TEST_CASE("a key given twice is refused, naming both places, not silently resolved", "[sweep]") {
  // In a flow map, in a block map, at the top level, and inside a list's map.
  const auto flow = error_of(replace(kBase, "lr: 1.0e-3,", "lr: 1.0e-3, lr: 5.0e-4,"));
  CHECK_THAT(flow, Catch::Contains("sweep.yaml:7:") && Catch::Contains("train.lr") &&
                       Catch::Contains("the key 'lr' is given twice") &&
                       Catch::Contains("(at 7:39 and 7:51)"));
  const auto block = error_of(replace(kBase, "  num_samples: 32\n", "  num_samples: 32\n  num_samples: 64\n"));
  CHECK_THAT(block, Catch::Contains("sweep.yaml:10:3:") && Catch::Contains("evaluation.num_samples") &&
                        Catch::Contains("(at 9:3 and 10:3)"));
  const auto top = error_of(std::string(kBase) + "seed: 4\n");
  CHECK_THAT(top, Catch::Contains("the key 'seed' is given twice") && Catch::Contains("(at 2:1 and 15:1)"));
  const auto listed = error_of(replace(kBase, "{plugin: ddim, steps: 10, eta: 0.0}",
                                       "{plugin: ddim, steps: 10, eta: 0.0, steps: 20}"));
  CHECK_THAT(listed, Catch::Contains("evaluation.samplers[1].steps") && Catch::Contains("given twice"));
  const auto axis = error_of(std::string(kBase) + "  seed: [2, 3]\n");
  CHECK_THAT(axis, Catch::Contains("sweep.seed") && Catch::Contains("(at 14:3 and 15:3)"));
  // One line each.
  for (const auto& message : {flow, block, top, listed, axis}) CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("a key given twice with --set is refused instead of the last one winning", "[sweep]") {
  const auto twice = error_of(kBase, {"train.lr=0.1", "train.lr=0.2"});
  CHECK_THAT(twice, Catch::Contains("--set train.lr=0.2") && Catch::Contains("already set by --set train.lr=0.1"));
  const auto inside = error_of(kBase, {"train={epochs: 1, epochs: 2}"});
  CHECK_THAT(inside, Catch::Contains("--set train={epochs: 1, epochs: 2}") &&
                         Catch::Contains("the key 'epochs' is given twice"));
}

TEST_CASE("zero terminal SNR, loss weighting and common noise: read, recorded, and old identities kept", "[sweep]") {
  const auto plain = load_sweep(write(kBase), {}, test::plugins()).runs[0];
  CHECK_FALSE(plain.zero_terminal_snr);
  CHECK(plain.train.loss_weighting == "none");
  CHECK(plain.evaluation.common_noise);
  // Options at their defaults stay out of the training identity: runs recorded before them keep it.
  CHECK_FALSE(plain.json["schedule"].contains("rescale_zero_terminal_snr"));
  CHECK_FALSE(plain.json["train"].contains("loss_weighting"));
  CHECK(plain.json["evaluation"]["common_noise"] == true);

  const auto text = replace(replace(kBase, "beta_end: 0.02}", "beta_end: 0.02, rescale_zero_terminal_snr: true}"),
                            "checkpoint_every: 1}", "checkpoint_every: 1, loss_weighting: min_snr, min_snr_gamma: 2}");
  const auto run = load_sweep(write(text), {"evaluation.common_noise=false"}, test::plugins()).runs[0];
  CHECK(run.zero_terminal_snr);
  CHECK(run.schedule.json["rescale_zero_terminal_snr"] == true);
  CHECK_THAT(run.schedule.label, Catch::Contains("rescale_zero_terminal_snr=true"));
  CHECK(run.train.loss_weighting == "min_snr");
  CHECK(run.train.min_snr_gamma == 2.0);
  CHECK(run.json["train"]["loss_weighting"] == "min_snr");
  CHECK(run.train_hash != plain.train_hash);
  CHECK_FALSE(run.evaluation.common_noise);

  CHECK_THAT(error_of(replace(kBase, "beta_end: 0.02}", "beta_end: 0.02, rescale_zero_terminal_snr: 1.5}")),
             Catch::Contains("schedule.rescale_zero_terminal_snr") && Catch::Contains(":6:"));
  CHECK_THAT(error_of(replace(kBase, "checkpoint_every: 1}", "checkpoint_every: 1, loss_weighting: snr}")),
             Catch::Contains("train.loss_weighting") && Catch::Contains("min_snr"));
}
