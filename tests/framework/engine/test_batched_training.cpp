#include <fstream>

#include <catch2/catch.hpp>

#include "engine/batched_training.hpp"
#include "training/checkpoint.hpp"
#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

// Two schedules x two seeds that differ in nothing else: one batch of four.
const char* kGrid = R"(name: batched_test
seed: 0
device: cpu
dataset:  {plugin: gmm2d, components: 4, train_size: 512, test_size: 128}
model:    {plugin: mlp, hidden: 32, layers: 2, time_embedding: 16}
schedule: {plugin: linear, timesteps: 100}
train:    {epochs: 4, batch_size: 128, lr: 1.0e-3, checkpoint_every: 2, grad_clip: 0.5}
evaluation:
  num_samples: 64
  samplers: [{plugin: ddim, steps: 10}]
  metrics:  [{plugin: test_loss}, {plugin: mmd}]
sweep:
  schedule.plugin: [linear, cosine_beta]
  seed: [0, 1]
)";

// The same sweep of a model plugin that offers no batched form (the default Denoiser's).
const char* kUnetGrid = R"(name: batched_unet
seed: 0
device: cpu
dataset:  {plugin: fashion_mnist, train_size: 64, test_size: 32}
model:    {plugin: unet, base_channels: 8, channel_mult: [1, 2], blocks_per_level: 1, groups: 4}
schedule: {plugin: linear, timesteps: 50}
train:    {epochs: 1, batch_size: 32, lr: 1.0e-3}
evaluation:
  num_samples: 16
  samplers: [{plugin: ddim, steps: 5}]
  metrics:  [{plugin: test_loss}]
sweep:
  schedule.plugin: [linear, cosine_beta]
  seed: [0, 1]
)";

SweepGrid grid(const fs::path& dir, const std::vector<std::string>& overrides = {},
               const char* text = kGrid) {
  const auto file = dir / "batched.yaml";
  std::ofstream(file) << text;
  return load_sweep(file.string(), overrides, test::plugins());
}

std::shared_ptr<Denoiser> tiny_mlp(std::uint64_t seed) {
  torch::manual_seed(seed);
  return test::plugins().make_model(
      "mlp", resolve_options(test::plugins().find(PluginKind::model, "mlp")->info.options,
                             {{"hidden", std::int64_t(32)}, {"layers", std::int64_t(2)},
                              {"time_embedding", std::int64_t(16)}},
                             "model 'mlp'"));
}

}  // namespace

TEST_CASE("the mlp's batched form computes what each of its member MLPs computes", "[batched]") {
  test::SingleThread one_thread;
  std::vector<std::shared_ptr<Denoiser>> models{tiny_mlp(1), tiny_mlp(2), tiny_mlp(3)};
  std::vector<Denoiser*> members{models[0].get(), models[1].get(), models[2].get()};
  REQUIRE(models[0]->batching_obstacle().empty());
  const auto batched = models[0]->make_batched(members);
  CHECK(batched->size() == 3);
  CHECK(batched->parameters().at(0).size(0) == 3);
  torch::manual_seed(7);
  const auto x = torch::randn({3, 50, 2});
  const auto t = torch::randint(0, 100, {3, 50}).to(torch::kFloat32);
  const auto out = batched->forward(x, t);
  for (int k = 0; k < 3; ++k) {
    const auto alone = models[k]->forward(x[k], t[k], Conditioning{});
    CHECK(torch::allclose(out[k], alone, 1e-5, 1e-6));
  }
  // A different member model is refused by name, not by a crash later.
  CHECK(batching_obstacle(
            grid(test::temp_dir("batched-obstacle"), {"model.residual=true"}).runs.at(0),
            test::plugins()) == "mlp with residual blocks has no batched form");
}

TEST_CASE("the mlp's batched form stacks its members' parameters in order and unstacks them",
          "[batched]") {
  test::SingleThread one_thread;
  std::vector<std::shared_ptr<Denoiser>> models{tiny_mlp(1), tiny_mlp(2)};
  const auto batched = models[0]->make_batched({models[0].get(), models[1].get()});
  const auto stacked = batched->parameters();
  for (std::size_t k = 0; k < models.size(); ++k) {
    const auto params = models[k]->parameters();
    REQUIRE(stacked.size() == params.size());
    for (std::size_t i = 0; i < params.size(); ++i) CHECK(torch::equal(stacked[i][k], params[i]));
  }
  CHECK(stacked.front().requires_grad());
  auto copy = tiny_mlp(9);  // another model of the same options takes member 1's weights
  batched->unstack_into(1, *copy);
  const auto copied = copy->parameters(), second = models[1]->parameters();
  for (std::size_t i = 0; i < copied.size(); ++i) CHECK(torch::equal(copied[i], second[i]));
}

TEST_CASE("a model plugin without a batched form says so, and its runs train alone", "[batched]") {
  test::SingleThread one_thread;
  const auto unet = test::plugins().make_model(
      "unet", resolve_options(test::plugins().find(PluginKind::model, "unet")->info.options, {},
                              "model 'unet'"));
  CHECK(unet->batching_obstacle() == "has no batched form");  // Denoiser's default
  CHECK_THROWS_AS(unet->make_batched({unet.get(), unet.get()}), RunError);

  const auto dir = test::temp_dir("batched-unet");
  const auto g = grid(dir, {}, kUnetGrid);
  REQUIRE(g.runs.size() == 4);
  // Asking makes the model, whose initial weights come from torch's global generator: it is
  // left as it was.
  torch::manual_seed(11);
  const auto before = torch::rand({4});
  torch::manual_seed(11);
  CHECK(batching_obstacle(g.runs.at(0), test::plugins()) == "unet has no batched form");
  CHECK(torch::equal(torch::rand({4}), before));

  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "runs.sqlite").string());
  auto recorded = g;
  const auto sweep_id = record_sweep(recorded, store, test::plugins());
  CHECK(train_batched_groups(recorded, store, test::plugins(), sweep_id, options) == 0);
  for (const auto& run : store.runs("batched_unet")) {
    CHECK(run.status == RunStatus::pending);
    CHECK(store.checkpoints(run.id).empty());
  }
}

TEST_CASE("batched grid training records the losses, weights, optimizer state and metrics of separate training",
          "[batched]") {
  test::SingleThread one_thread;
  const auto dir = test::temp_dir("batched");
  const auto g = grid(dir);
  REQUIRE(g.runs.size() == 4);

  SweepOptions separate_options;
  separate_options.engine.out_dir = dir / "separate";
  RunStore separate((dir / "separate.sqlite").string());
  CHECK(run_sweep(g, separate, test::plugins(), separate_options).done == 4);

  SweepOptions batched_options;
  batched_options.engine.out_dir = dir / "batched";
  batched_options.batch_grid = true;
  RunStore batched((dir / "batched.sqlite").string());
  auto recorded = g;
  const auto sweep_id = record_sweep(recorded, batched, test::plugins());
  CHECK(train_batched_groups(recorded, batched, test::plugins(), sweep_id, batched_options) == 4);
  const auto summary = run_sweep(g, batched, test::plugins(), batched_options);  // evaluates
  CHECK(summary.done == 4);
  CHECK(summary.failed == 0);

  const auto a_runs = separate.runs("batched_test");
  const auto b_runs = batched.runs("batched_test");
  REQUIRE(a_runs.size() == 4);
  REQUIRE(b_runs.size() == 4);
  for (std::size_t r = 0; r < 4; ++r) {
    INFO("grid point " << r);
    REQUIRE(a_runs[r].grid_index == b_runs[r].grid_index);
    CHECK(b_runs[r].status == RunStatus::done);
    const auto la = separate.losses(a_runs[r].id), lb = batched.losses(b_runs[r].id);
    REQUIRE(la.size() == 4);
    REQUIRE(lb.size() == la.size());
    for (std::size_t i = 0; i < la.size(); ++i) {
      CHECK(lb[i].step == la[i].step);
      CHECK(lb[i].loss == Approx(la[i].loss).epsilon(1e-4));
    }
    const auto ca = separate.checkpoints(a_runs[r].id), cb = batched.checkpoints(b_runs[r].id);
    REQUIRE(ca.size() == 2);
    REQUIRE(cb.size() == ca.size());
    for (std::size_t c = 0; c < ca.size(); ++c) {
      CHECK(cb[c].epoch == ca[c].epoch);
      CHECK(cb[c].step == ca[c].step);
      // The checkpoint files: weights, Adam moments and step, and the generator's state.
      auto ma = tiny_mlp(0), mb = tiny_mlp(0);
      torch::optim::Adam oa(ma->parameters()), ob(mb->parameters());
      auto ga = make_generator(torch::kCPU, 0), gb = make_generator(torch::kCPU, 0);
      load_checkpoint(ca[c].file, *ma, &oa, &ga, torch::kCPU);
      load_checkpoint(cb[c].file, *mb, &ob, &gb, torch::kCPU);
      CHECK(torch::equal(ga.get_state(), gb.get_state()));
      const auto pa = ma->parameters(), pb = mb->parameters();
      for (std::size_t p = 0; p < pa.size(); ++p) {
        CHECK(torch::allclose(pa[p], pb[p], 1e-4, 1e-5));
        const auto& sa = static_cast<torch::optim::AdamParamState&>(
            *oa.state().at(c10::guts::to_string(pa[p].unsafeGetTensorImpl())));
        const auto& sb = static_cast<torch::optim::AdamParamState&>(
            *ob.state().at(c10::guts::to_string(pb[p].unsafeGetTensorImpl())));
        CHECK(sa.step() == sb.step());
        CHECK(torch::allclose(sa.exp_avg(), sb.exp_avg(), 1e-3, 1e-6));
        CHECK(torch::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), 1e-3, 1e-9));
      }
      const auto va = separate.metrics(ca[c].id), vb = batched.metrics(cb[c].id);
      REQUIRE(va.size() == 2);
      REQUIRE(vb.size() == va.size());
      for (std::size_t m = 0; m < va.size(); ++m) {
        CHECK(vb[m].metric == va[m].metric);
        CHECK(vb[m].value == Approx(va[m].value).epsilon(1e-3).margin(1e-4));
      }
    }
  }
  // The four runs really differ (schedules and seeds), so the comparison above is not vacuous.
  CHECK(separate.losses(a_runs[0].id).back().loss != separate.losses(a_runs[1].id).back().loss);
}

TEST_CASE("runs without a batched form, or of one, train alone", "[batched]") {
  test::SingleThread one_thread;
  const auto dir = test::temp_dir("batched-alone");
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "runs.sqlite").string());
  auto residual = grid(dir, {"model.residual=true", "train.epochs=1"});
  auto sweep_id = record_sweep(residual, store, test::plugins());
  CHECK(train_batched_groups(residual, store, test::plugins(), sweep_id, options) == 0);
  // One seed and schedule: a group of one is not batched.
  auto single = grid(dir, {"name=single", "sweep.seed=[0]", "sweep.schedule.plugin=[linear]", "train.epochs=1"});
  sweep_id = record_sweep(single, store, test::plugins());
  CHECK(train_batched_groups(single, store, test::plugins(), sweep_id, options) == 0);
}
