#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "difflab/plugin.hpp"
#include "io/npy.hpp"
#include "store/run_store.hpp"
#include "config/sections.hpp"
#include "support.hpp"

using namespace difflab;

namespace {
const std::string kTiny = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";

int runner(const std::string& args, std::string* output) {
  return test::run_command(test::runner_path() + " " + args, output);
}
}  // namespace

TEST_CASE("runner sweep runs the tiny schedule study end to end and report compares it", "[cli]") {
  const auto dir = test::temp_dir("cli");
  const auto db = (dir / "runs.sqlite").string();
  std::string out;
  REQUIRE(runner("sweep " + kTiny + " --db " + db + " --out " + (dir / "runs").string() + " --threads 1 -q", &out) == 0);
  {
    RunStore store(db);
    const auto runs = store.runs("tiny_schedule_sweep");
    REQUIRE(runs.size() == 4);
    for (const auto& run : runs) {
      CHECK(run.status == RunStatus::done);
      const auto checkpoints = store.checkpoints(run.id);
      CHECK(checkpoints.size() == 5);
      for (const auto& c : checkpoints) {
        std::set<std::string> metrics;
        for (const auto& m : store.metrics(c.id)) metrics.insert(m.metric);
        CHECK(metrics == std::set<std::string>{"test_loss", "mmd", "wasserstein"});
        CHECK(store.artifacts(c.id).size() == 5);  // .npy and scatter per sampler, one GIF
      }
    }
  }
  REQUIRE(runner("report --db " + db + " --format json", &out) == 0);
  const auto rows = nlohmann::json::parse(out);
  CHECK(rows.size() == 4);
  REQUIRE(runner("report --db " + db, &out) == 0);
  CHECK_THAT(out, Catch::Contains("cosine_beta") && Catch::Contains("exponential") &&
                      Catch::Contains("wasserstein[ddim(steps=20,eta=0)]"));
  // A second sweep of the same file finds everything done and trains nothing.
  REQUIRE(runner("sweep " + kTiny + " --db " + db + " --out " + (dir / "runs").string(), &out) == 0);
  CHECK_THAT(out, Catch::Contains("4 of 4 runs done (4 already before)"));
}

TEST_CASE("a run records its schedule's alpha bar_T, and validate prints it and warns when it is far from 0",
          "[cli]") {
  // abar_T = prod_t (1 - beta_t) of linspace(1e-4, 0.2, T): tiny at T = 100, 0.36 at T = 4.
  const auto abar_T = [](std::int64_t T) {
    return torch::prod(1.0 - torch::linspace(1e-4, 0.2, T, torch::kFloat64)).item<double>();
  };
  std::string out;
  REQUIRE(runner("validate " + kTiny + " --set 'sweep.schedule.plugin=[linear]' --set 'sweep.schedule.timesteps=[100, 4]'" +
                     " --set 'evaluation.samplers=[{plugin: ddpm}]'",
                 &out) == 0);
  char line[200];
  std::snprintf(line, sizeof line, "alpha bar_T = %.3g", abar_T(100));
  CHECK_THAT(out, Catch::Contains(line));
  std::snprintf(line, sizeof line, "warning: schedule linear(timesteps=4,beta_start=0.0001,beta_end=0.2): alpha bar_T = %.3g is far from 0",
                abar_T(4));
  CHECK_THAT(out, Catch::Contains(line));
  CHECK(std::count(out.begin(), out.end(), '\n') == 4);  // ok line, two schedules, one warning

  const auto dir = test::temp_dir("abar");
  const auto db = (dir / "runs.sqlite").string();
  REQUIRE(runner("sweep " + kTiny + " --db " + db + " --out " + (dir / "runs").string() +
                     " --set 'sweep.schedule.plugin=[linear]' --set train.epochs=2 --threads 1 -q",
                 &out) == 0);
  RunStore store(db, RunStore::Access::read_only);
  CHECK(store.runs().at(0).abar_T == Approx(abar_T(100)).epsilon(1e-12));
}

TEST_CASE("runner refuses bad input with exit code 2 and a one-line message", "[cli]") {
  const auto dir = test::temp_dir("cli-bad");
  std::ifstream in(kTiny);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("schedule:"), 9, "schedual:");
  const auto bad = (dir / "bad.yaml").string();
  std::ofstream(bad) << text;
  std::string out;
  CHECK(runner("validate " + bad, &out) == 2);
  CHECK_THAT(out, Catch::Contains("bad.yaml:7:1: schedual: unknown key 'schedual' (did you mean 'schedule'?)"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(runner("validate " + kTiny, &out) == 0);
  CHECK_THAT(out, Catch::Contains("ok, sweep 'tiny_schedule_sweep' with 4 runs"));
  CHECK(runner("sweep " + kTiny + " --dry-run", &out) == 0);
  CHECK_THAT(out, Catch::Contains("3  ") && Catch::Contains("schedule.plugin=exponential"));
  CHECK(runner("sweep /nonexistent.yaml", &out) == 2);
  CHECK_THAT(out, Catch::Contains("/nonexistent.yaml: cannot read the sweep file"));
  CHECK(runner("sweep " + kTiny + " --bogus", &out) == 2);
  CHECK(runner("swep", &out) == 2);
  CHECK_THAT(out, Catch::Contains("did you mean 'sweep'"));
  CHECK(runner("report --db " + (dir / "none.sqlite").string(), &out) == 2);
  CHECK(runner("report --db " + (dir / "none.sqlite").string() + " --format xml", &out) == 2);
  CHECK(runner("report --db " + dir.string(), &out) == 2);
  CHECK_THAT(out, Catch::Contains("is a folder, not a run database"));
  CHECK(runner("plugins --plugin-dir " + (dir / "missing").string(), &out) == 2);
  CHECK_THAT(out, Catch::Contains("plugin folder does not exist"));
  CHECK(runner("sweep " + kTiny + " --set train.lr=oops", &out) == 2);
  CHECK_THAT(out, Catch::Contains("--set train.lr=oops: train.lr: expected a number, got 'oops'"));
  CHECK(test::run_command("DIFFLAB_CPU_GEMM=blas " + test::runner_path() + " sweep " + kTiny + " --dry-run",
                          &out) == 2);
  CHECK_THAT(out, Catch::Contains("DIFFLAB_CPU_GEMM: expected 'torch' or 'onednn', got 'blas'"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}

TEST_CASE("runner plugins lists every plugin with its library and options", "[cli]") {
  std::string out;
  REQUIRE(runner("plugins", &out) == 0);
  for (const char* name : {"linear", "cosine_beta", "quadratic", "scaled_linear", "exponential", "cosine", "sigmoid", "mlp",
                           "ddpm", "ddpm_x0", "ddim", "gmm2d", "swiss_roll", "moons", "test_loss", "mmd",
                           "wasserstein"}) {
    CHECK_THAT(out, Catch::Contains(std::string(name) + "  ") &&
                        Catch::Contains("_" + std::string(name) + ".so"));
  }
  CHECK_THAT(out, Catch::Contains("beta_start (float, default 0.0001)"));
  REQUIRE(runner("plugins --kind sampler", &out) == 0);
  CHECK_THAT(out, !Catch::Contains("gmm2d"));
}

TEST_CASE("runner describe prints a section's keys from the specs that validate it", "[cli]") {
  std::string out;
  REQUIRE(runner("describe train", &out) == 0);
  for (const auto& spec : train_section().options) CHECK_THAT(out, Catch::Contains("  " + describe_option(spec)));
  CHECK_THAT(out, Catch::Contains("  lr (float, default 0.001): learning rate [> 0]"));
  CHECK_THAT(out, Catch::Contains("  optimizer (string, default adam): optimizer [one of adam, adamw]"));
  REQUIRE(runner("describe evaluation", &out) == 0);
  CHECK_THAT(out, Catch::Contains("  num_samples (int, default 2000): samples each sampler draws per checkpoint [>= 1]"));
  CHECK_THAT(out, Catch::Contains("  samplers (list of sampler plugins, default none)"));
  REQUIRE(runner("describe", &out) == 0);
  CHECK_THAT(out, Catch::Contains("train: ") && Catch::Contains("evaluation: ") && Catch::Contains("sweep: "));
  CHECK_THAT(out, Catch::Contains("task (string, default diffusion)") &&
                      Catch::Contains("  " + describe_option(autoencoder_framework_options().front())));
  // The sweep-file reference shows the same text, so the docs cannot drift from the specs.
  std::ifstream docs(std::string(DIFFLAB_SOURCE_DIR) + "/docs/sweep-files.md");
  const std::string reference((std::istreambuf_iterator<char>(docs)), std::istreambuf_iterator<char>());
  CHECK_THAT(reference, Catch::Contains(describe_section(train_section()) + describe_section(evaluation_section())));
  CHECK(runner("describe evalution", &out) == 2);
  CHECK_THAT(out, Catch::Contains("unknown section 'evalution' (did you mean 'evaluation'?)"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}

TEST_CASE("runner refuses each kind of bad plugin library with exit code 2 naming it", "[cli][registry]") {
  const auto root = test::temp_dir("cli-bad-plugins");
  const std::string fixtures = DIFFLAB_TEST_PLUGIN_DIR;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"no_entry", {"not a difflab plugin", "DIFFLAB_PLUGIN"}},
      {"wrong_api", {"plugin API version 999", "rebuild"}},
      {"previous_api", {"plugin API version " + std::to_string(kPluginApiVersion - 1),
                        "this difflab has version " + std::to_string(kPluginApiVersion), "rebuild"}},
      {"wrong_torch", {"torch 0.0.1"}},
      {"throws", {"registration threw", "fixture failure while registering"}},
      {"duplicate", {"'linear'", "already registered by"}},
      {"text", {"cannot be loaded as a shared library"}},
      {"empty", {"cannot be loaded as a shared library"}},
  };
  for (const auto& [name, words] : cases) {
    INFO(name);
    const auto dir = root / name;
    std::filesystem::create_directories(dir);
    const auto library = dir / ("libfixture_" + name + ".so");
    if (name == "text") {
      std::ofstream(library) << "this is not an ELF file\n";
    } else if (name == "empty") {
      std::ofstream{library};
    } else {
      std::filesystem::copy_file(fixtures + "/libfixture_" + name + ".so", library);
    }
    std::string out;
    CHECK(runner("validate " + kTiny + " --plugin-dir " + dir.string(), &out) == 2);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK_THAT(out, Catch::Contains(library.filename().string()));
    for (const auto& w : words) CHECK_THAT(out, Catch::Contains(w));
  }
}

TEST_CASE("the tiny image study records every image metric per checkpoint and sampler", "[cli][images]") {
  const auto dir = test::temp_dir("cli-images");
  const std::string tiny_images = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_image_sweep.yaml";
  const auto db = (dir / "runs.sqlite").string();
  std::string out;
  const auto env = "DIFFLAB_CACHE_DIR=" + (dir / "cache").string() + " ";
  REQUIRE(test::run_command(env + test::runner_path() + " sweep " + tiny_images + " --db " + db + " --out " +
                                (dir / "runs").string() + " --threads 1 -q",
                            &out) == 0);
  RunStore store(db, RunStore::Access::read_only);
  const auto runs = store.runs("tiny_image_sweep");
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].status == RunStatus::done);
  const auto checkpoints = store.checkpoints(runs[0].id);
  REQUIRE(checkpoints.size() == 2);
  for (const auto& c : checkpoints) {
    CHECK(c.weights == "ema(0.9)");
    std::map<std::string, std::set<std::string>> per_sampler;  // sampler -> metric names
    for (const auto& m : store.metrics(c.id)) {
      per_sampler[m.sampler].insert(m.metric);
      if (m.metric == "fid" || m.metric == "kid" || m.metric == "inception_score" || m.metric == "lpips") {
        CHECK_THAT(m.variant, Catch::Contains("difflab-cnn:"));  // the extractor is named
      }
      CHECK(std::isfinite(m.value));
      // Which way each improves, as its plugin declares it, recorded beside the value.
      const bool diversity = m.metric == "lpips" && !m.sampler.empty();  // among samples: more is better
      CHECK(m.better == (m.metric == "psnr" || m.metric == "inception_score" || diversity ? "higher" : "lower"));
    }
    CHECK(per_sampler[""] == std::set<std::string>{"lpips", "psnr"});  // reconstructions
    for (const auto* sampler : {"ddpm", "ddim(steps=10)"}) {
      CHECK(per_sampler[sampler] == std::set<std::string>{"fid", "kid", "inception_score", "lpips"});
    }
    std::set<std::string> kinds;
    for (const auto& a : store.artifacts(c.id)) {
      kinds.insert(a.kind);
      CHECK(std::filesystem::exists(a.path));
    }
    CHECK(kinds == std::set<std::string>{"samples_npy", "samples_grid_png", "progression_png", "distribution_png",
                                         "distribution_json"});
  }
  // The difflab feature network was trained once for the whole run and cached.
  CHECK(std::distance(std::filesystem::directory_iterator(dir / "cache"), std::filesystem::directory_iterator()) == 1);
  REQUIRE(test::run_command(test::runner_path() + " report --db " + db, &out) == 0);
  CHECK_THAT(out, Catch::Contains("fid[ddpm]") && Catch::Contains("psnr"));

  // A TorchScript network given by path is used, and named in the store. This stand-in has the
  // standard Inception's calling convention (uint8 RGB, forward(x, return_features)).
  torch::jit::Module inception("FixtureInception");
  inception.define(R"(
def forward(self, x, return_features: bool):
    f = x.float() / 255.0
    features = torch.cat([torch.mean(f, [2, 3]), torch.amax(f, [2, 3]), torch.std(f, [2, 3])], 1)
    if return_features:
        return features
    return torch.softmax(features, 1)
)");
  const auto network = (dir / "fixture-inception.pt").string();
  inception.save(network);
  REQUIRE(test::run_command(test::runner_path() + " sweep " + tiny_images + " --db " + db + " --out " +
                                (dir / "runs").string() + " --set name=tiny_image_inception --set train.epochs=1 --threads 1" +
                                " --set 'evaluation.samplers=[{plugin: ddim, steps: 10}]'" +
                                " --set 'evaluation.metrics=[{plugin: fid, network: " + network + "}]' -q",
                            &out) == 0);
  const auto with_network = store.runs("tiny_image_inception").at(0);
  const auto values = store.metrics(store.checkpoints(with_network.id).at(0).id);
  REQUIRE(values.size() == 1);
  for (const auto& m : values) {
    CHECK(m.variant == "inception:fixture-inception.pt,ref=test");
    CHECK(m.value > 0);
  }

  // A TorchScript network given by path that is missing or not a module: exit 2 naming it.
  const auto missing = (dir / "inception-2015-12-05.pt").string();
  CHECK(runner("validate " + tiny_images + " --set 'evaluation.metrics=[{plugin: fid, network: " + missing + "}]'",
               &out) == 2);
  CHECK_THAT(out, Catch::Contains(missing + ": no such network file"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  std::ofstream(dir / "wrong.pt") << "not a network\n";
  CHECK(runner("validate " + tiny_images + " --set 'evaluation.metrics=[{plugin: kid, network: " +
                   (dir / "wrong.pt").string() + "}]'",
               &out) == 2);
  CHECK_THAT(out, Catch::Contains("wrong.pt: not a TorchScript module"));
}

TEST_CASE("every experiment file validates", "[cli]") {
  for (const auto& e : std::filesystem::directory_iterator(std::string(DIFFLAB_SOURCE_DIR) + "/experiments")) {
    if (e.path().extension() != ".yaml") continue;
    INFO(e.path());
    std::string out;
    // The MNIST studies need MNIST's files; Fashion-MNIST's have the same format.
    const bool mnist = e.path().filename() == "mnist_ddpm.yaml" || e.path().filename() == "latent_mnist.yaml";
    const std::string root = mnist ? " --set dataset.root=/usr/share/datasets/fashion-mnist" : "";
    CHECK(runner("validate " + e.path().string() + root, &out) == 0);
  }
}

TEST_CASE("a zero terminal SNR is refused for an epsilon model, and validates for a v model", "[cli][zero-snr]") {
  std::string out;
  const std::string zero_snr = " --set 'sweep.schedule.plugin=[linear]' --set schedule.rescale_zero_terminal_snr=true";
  CHECK(runner("validate " + kTiny + zero_snr, &out) == 2);
  CHECK_THAT(out, Catch::Contains("schedule.rescale_zero_terminal_snr: epsilon prediction cannot be sampled") &&
                      Catch::Contains("prediction: v"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(runner("validate " + kTiny + zero_snr + " --set model.prediction=v", &out) == 0);
  CHECK_THAT(out, Catch::Contains("alpha bar_T = 0 "));

  // A v model trains on it, min-SNR weighted, and every sampler's samples are finite.
  const auto dir = test::temp_dir("zero-snr");
  const auto db = (dir / "runs.sqlite").string();
  REQUIRE(runner("sweep " + kTiny + zero_snr + " --set model.prediction=v --set train.loss_weighting=min_snr" +
                     " --set train.epochs=2 --set 'evaluation.samplers=[{plugin: ddpm}, {plugin: euler, steps: 5}," +
                     " {plugin: heun, steps: 4}, {plugin: dpmpp_2m, steps: 5}, {plugin: unipc, steps: 5}]'" +
                     " --db " + db + " --out " + (dir / "runs").string() + " --threads 1 -q",
                 &out) == 0);
  RunStore store(db, RunStore::Access::read_only);
  const auto metrics = store.sweep_metrics("tiny_schedule_sweep");
  CHECK(metrics.size() > 10);
  for (const auto& m : metrics) {
    INFO(m.sampler << " " << m.metric);
    CHECK(std::isfinite(m.value));
  }
}

TEST_CASE("common noise: every sampler and every checkpoint of a run start from the same x_T", "[cli][samplers]") {
  // euler and ddim are one method (samplers.md), so from one x_T their samples agree; with a
  // learning rate of 1e-12 the two checkpoints' models agree too, so from one x_T theirs do.
  const auto samples = [&](const std::string& common) {
    const auto dir = test::temp_dir("common-noise-" + common);
    const auto db = (dir / "runs.sqlite").string();
    std::string out;
    REQUIRE(runner("sweep " + kTiny + " --set 'sweep.schedule.plugin=[linear]' --set train.epochs=4" +
                       " --set train.lr=1e-12 --set evaluation.common_noise=" + common +
                       " --set 'evaluation.samplers=[{plugin: euler, steps: 5}, {plugin: ddim, steps: 5}]'" +
                       " --set 'evaluation.metrics=[{plugin: mmd}]' --db " + db + " --out " +
                       (dir / "runs").string() + " --threads 1 -q",
                   &out) == 0);
    RunStore store(db, RunStore::Access::read_only);
    std::map<std::string, torch::Tensor> by_checkpoint_and_sampler;
    for (const auto& c : store.checkpoints(store.runs().at(0).id)) {
      for (const auto& a : store.artifacts(c.id)) {
        if (a.kind == "samples_npy") by_checkpoint_and_sampler[std::to_string(c.epoch) + " " + a.sampler] = read_npy(a.path);
      }
    }
    REQUIRE(by_checkpoint_and_sampler.size() == 4);  // checkpoints at epochs 2 and 4, two samplers
    return by_checkpoint_and_sampler;
  };
  const auto common = samples("true");
  const auto& first = common.begin()->second;
  for (const auto& [key, x] : common) {
    INFO(key);
    CHECK(torch::allclose(x, first, 1e-4, 1e-5));
  }
  const auto apart = samples("false");
  CHECK_FALSE(torch::allclose(apart.at("2 euler(steps=5)"), apart.at("2 ddim(steps=5)"), 1e-2, 1e-2));
  CHECK_FALSE(torch::allclose(apart.at("2 ddim(steps=5)"), apart.at("4 ddim(steps=5)"), 1e-2, 1e-2));
}
