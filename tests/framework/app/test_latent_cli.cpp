// Latent diffusion from a sweep file: the autoencoder trained first as its own run (resumed after
// a kill, waited for by its latent runs), the latent run's decoded samples measured as images,
// and bad autoencoder sections refused with the key's line.
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "store/run_store.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const std::string kTinyLatent = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_latent_sweep.yaml";

std::string sweep(const fs::path& dir, const std::string& file, const std::string& extra = "") {
  return "DIFFLAB_CACHE_DIR=" + (dir / "cache").string() + " " + test::runner_path() + " sweep " + file + " --db " +
         (dir / "runs.sqlite").string() + " --out " + (dir / "runs").string() + " --threads 1 " + extra;
}

std::string with_replaced(const std::string& text, const std::string& from, const std::string& to) {
  auto out = text;
  const auto at = out.find(from);
  REQUIRE(at != std::string::npos);
  return out.replace(at, from.size(), to);
}

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("a latent sweep trains its autoencoder first, then diffuses its latents and measures decoded images",
          "[cli][autoencoder]") {
  const auto dir = test::temp_dir("cli-latent");
  std::string out;
  // --jobs 2: the latent run may only start once the autoencoder run is done.
  REQUIRE(test::run_command(sweep(dir, kTinyLatent, "--jobs 2 -q"), &out) == 0);
  RunStore store((dir / "runs.sqlite").string(), RunStore::Access::read_only);
  const auto runs = store.runs("tiny_latent_sweep");
  REQUIRE(runs.size() == 2);
  const auto& autoencoder = runs[0];
  const auto& latent = runs[1];
  CHECK(autoencoder.status == RunStatus::done);
  CHECK(latent.status == RunStatus::done);
  CHECK(nlohmann::json::parse(autoencoder.config_json).at("task") == "autoencoder");
  CHECK(nlohmann::json::parse(latent.config_json).at("autoencoder").at("train_hash") == autoencoder.train_hash);
  CHECK(latent.started_at >= autoencoder.finished_at);  // ISO 8601 UTC compares as text
  CHECK(std::isnan(autoencoder.latent_scale));
  CHECK(latent.latent_scale > 0);

  // The autoencoder's loss per epoch with its two parts: reconstruction + kl_weight x KL.
  const auto losses = store.losses(autoencoder.id);
  REQUIRE(losses.size() == 2);
  for (const auto& l : losses) {
    const auto terms = nlohmann::json::parse(l.terms_json);
    CHECK(l.loss == Approx(terms.at("reconstruction").get<double>() + 1e-4 * terms.at("kl").get<double>()).epsilon(1e-5));
    CHECK(terms.at("kl").get<double>() > 0);
  }
  CHECK(store.losses(latent.id).front().terms_json.empty());

  // The autoencoder measured on its reconstructions, with its pictures.
  for (const auto& c : store.checkpoints(autoencoder.id)) {
    std::set<std::string> metrics, kinds;
    for (const auto& m : store.metrics(c.id)) {
      metrics.insert(m.metric);
      CHECK(m.sampler.empty());
      CHECK(std::isfinite(m.value));
      if (m.metric == "psnr") CHECK(m.value > 8.0);
    }
    for (const auto& a : store.artifacts(c.id)) kinds.insert(a.kind);
    CHECK(metrics == std::set<std::string>{"psnr", "fid"});
    CHECK(kinds == std::set<std::string>{"reconstructions_png", "latent_scatter_png"});
  }
  // The latent run: image metrics per checkpoint and sampler on the decoded samples.
  const auto checkpoints = store.checkpoints(latent.id);
  REQUIRE(checkpoints.size() == 2);
  for (const auto& c : checkpoints) {
    std::map<std::string, std::set<std::string>> per_sampler;
    for (const auto& m : store.metrics(c.id)) {
      per_sampler[m.sampler].insert(m.metric);
      CHECK(std::isfinite(m.value));
    }
    CHECK(per_sampler[""] == std::set<std::string>{"test_loss"});
    for (const auto* sampler : {"ddpm", "ddim(steps=10)"}) {
      CHECK(per_sampler[sampler] == std::set<std::string>{"fid", "kid", "inception_score", "lpips"});
    }
    std::map<std::string, std::string> files;
    for (const auto& a : store.artifacts(c.id)) {
      if (a.sampler == "ddpm") files[a.kind] = a.path;
      CHECK(fs::exists(a.path));
    }
    CHECK(files.size() == 6);  // latents_npy samples_npy samples_grid_png progression_png distribution_png/json
    const auto view = nlohmann::json::parse(read_text(files.at("distribution_json")));
    CHECK(view.at("real").size() == 128);  // every test image, up to 200
    CHECK(view.at("generated").size() == 64);
    CHECK(view.at("real_labels").size() == 128);
  }
  // The latents were encoded once and cached under the output folder.
  CHECK(std::distance(fs::directory_iterator(dir / "runs" / "latents"), fs::directory_iterator()) == 1);

  REQUIRE(test::run_command(test::runner_path() + " report --db " + (dir / "runs.sqlite").string(), &out) == 0);
  CHECK_THAT(out, Catch::Contains("autoencoder"));
}

TEST_CASE("a killed autoencoder run resumes from its checkpoint, and its latent run waits for it", "[cli][autoencoder]") {
  const auto dir = test::temp_dir("cli-latent-kill");
  std::string out;
  // Killed at the 10th step of run 0 (the autoencoder), after its first checkpoint (8 steps).
  CHECK(test::run_command("DIFFLAB_CRASH_AT=train-step:10@0 " + sweep(dir, kTinyLatent, "-v"), &out) == 128 + 9);
  {
    RunStore store((dir / "runs.sqlite").string(), RunStore::Access::read_only);
    const auto runs = store.runs("tiny_latent_sweep");
    CHECK(runs[0].status == RunStatus::running);
    CHECK(runs[1].status == RunStatus::pending);  // it never started without its autoencoder
    CHECK(store.checkpoints(runs[0].id).size() == 1);
  }
  REQUIRE(test::run_command(sweep(dir, kTinyLatent, "-v"), &out) == 0);
  CHECK_THAT(out, Catch::Contains("run 0 [(no axes)]: resuming from epoch 1"));
  RunStore store((dir / "runs.sqlite").string(), RunStore::Access::read_only);
  for (const auto& r : store.runs("tiny_latent_sweep")) CHECK(r.status == RunStatus::done);
}

TEST_CASE("when the autoencoder run fails, its latent run fails with its reason, in one process or in --jobs",
          "[cli][autoencoder]") {
  for (const std::string jobs : {"", "--jobs 2 "}) {
    INFO(jobs);
    const auto dir = test::temp_dir("cli-latent-failed");
    std::string out;
    // A learning rate that makes the autoencoder's loss infinite in its first epoch.
    CHECK(test::run_command(sweep(dir, kTinyLatent, jobs + "-q --set autoencoder.train.lr=1.0e30"), &out) == 1);
    RunStore store((dir / "runs.sqlite").string(), RunStore::Access::read_only);
    const auto runs = store.runs("tiny_latent_sweep");
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].status == RunStatus::failed);
    CHECK(runs[1].status == RunStatus::failed);
    CHECK_THAT(runs[1].reason, Catch::StartsWith("its autoencoder (grid point 0) failed: ") &&
                                   Catch::Contains(runs[0].reason));
    CHECK(store.checkpoints(runs[1].id).empty());  // it never trained
  }
}

TEST_CASE("a bad autoencoder section is refused with exit 2 and the key's line", "[cli][autoencoder]") {
  const auto dir = test::temp_dir("cli-latent-bad");
  const auto text = read_text(kTinyLatent);
  std::string out;
  const auto check = [&](const std::string& name, const std::string& bad_text, const std::string& expected) {
    const auto file = (dir / (name + ".yaml")).string();
    std::ofstream(file) << bad_text;
    INFO(name);
    CHECK(test::run_command(test::runner_path() + " validate " + file, &out) == 2);
    CHECK_THAT(out, Catch::Contains(expected));
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  };
  check("unknown_key", with_replaced(text, "  base_channels: 8", "  base_chanels: 8"),
        "unknown_key.yaml:10:3: autoencoder.base_chanels: unknown key 'base_chanels' (did you mean 'base_channels'?)");
  check("unknown_train_key", with_replaced(text, "  train: {epochs: 2,", "  train: {epoch: 2,"),
        "unknown_train_key.yaml:13:11: autoencoder.train.epoch: unknown key 'epoch'");
  // A 2x4x4 latent is 32 numbers; an MLP of data_dim 2 cannot take it.
  check("latent_shape", with_replaced(text, "data_dim: 32", "data_dim: 2"),
        "latent_shape.yaml:9:3: autoencoder: model 'mlp(data_dim=2,hidden=64,layers=2)' cannot take the "
        "autoencoder's latents of shape [2, 4, 4]");
  check("samplers", with_replaced(text, "    metrics: [{plugin: psnr}", "    samplers: [{plugin: ddim}]\n    metrics: [{plugin: psnr}"),
        "autoencoder.evaluation.samplers: an autoencoder run draws no samples");
  check("task_with_model", "name: t\ntask: autoencoder\ndataset: {plugin: fashion_mnist}\nautoencoder: {plugin: vae}\n"
                           "model: {plugin: mlp}\n",
        "task_with_model.yaml:5:8: model: a task: autoencoder run trains no denoiser");
  check("no_levels", with_replaced(text, "channel_mult: [1, 2, 2]", "channel_mult: []"),
        "run 0: autoencoder 'vae(base_channels=8,channel_mult=[],kl_weight=0.0001)': vae: channel_mult needs at "
        "least one level");
  check("points", "name: t\ntask: autoencoder\ndataset: {plugin: gmm2d}\nautoencoder: {plugin: vae}\n",
        "autoencoder 'vae': vae: takes images [B, 1, H, W] (in_channels 1), got [1, 2]");
  check("recon_metric", "name: t\ntask: autoencoder\ndataset: {plugin: fashion_mnist, train_size: 64, test_size: 32}\n"
                        "autoencoder: {plugin: vae}\nevaluation: {metrics: [{plugin: test_loss}]}\n",
        "evaluation.metrics 'test_loss' does not measure an autoencoder's reconstructions");
}
