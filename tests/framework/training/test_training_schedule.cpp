#include <cmath>

#include <catch2/catch.hpp>

#include "training/checkpoint.hpp"
#include "difflab/options.hpp"
#include "support.hpp"
#include "training/training_schedule.hpp"

using namespace difflab;

namespace {
std::shared_ptr<Denoiser> small_mlp() {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::model, "mlp");
  return registry.make_model("mlp", resolve_options(entry.info.options, {{"hidden", std::int64_t{8}},
                                                                          {"layers", std::int64_t{1}},
                                                                          {"time_embedding", std::int64_t{4}}}));
}
}  // namespace

TEST_CASE("learning rate: linear warm-up, then constant or cosine decay to min_lr", "[training]") {
  TrainConfig train;
  train.lr = 1e-3;
  train.lr_schedule = "constant";
  CHECK(learning_rate(train, 0, 100) == 1e-3);
  CHECK(learning_rate(train, 99, 100) == 1e-3);
  train.warmup_steps = 10;
  CHECK(learning_rate(train, 0, 100) == Approx(1e-4));
  CHECK(learning_rate(train, 4, 100) == Approx(5e-4));
  CHECK(learning_rate(train, 9, 100) == Approx(1e-3));
  CHECK(learning_rate(train, 50, 100) == 1e-3);
  train.lr_schedule = "cosine";
  train.min_lr = 1e-5;
  // lr(s) = min + (lr - min) (1 + cos(pi (s - warmup) / (total - warmup))) / 2
  CHECK(learning_rate(train, 10, 100) == Approx(1e-3));
  CHECK(learning_rate(train, 55, 100) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5)));
  CHECK(learning_rate(train, 40, 100) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + std::cos(M_PI / 3))));
  CHECK(learning_rate(train, 100, 100) == Approx(1e-5));
  CHECK(learning_rate(train, 150, 100) == Approx(1e-5));  // past the end: stays at min_lr

  auto model = small_mlp();
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  set_learning_rate(optimizer, 2.5e-4);
  for (auto& group : optimizer.param_groups()) CHECK(group.options().get_lr() == 2.5e-4);
}

TEST_CASE("the weight average follows shadow = d shadow + (1 - d) model", "[training]") {
  auto model = small_mlp();
  auto shadow = small_mlp();
  WeightAverage ema(*model, shadow, 0.9);
  const auto w0 = model->parameters()[0].detach().clone();
  for (std::size_t i = 0; i < model->parameters().size(); ++i) {
    CHECK(torch::equal(model->parameters()[i], shadow->parameters()[i]));  // starts equal
  }
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0].add_(1.0);
  }
  ema.update();
  CHECK(torch::allclose(shadow->parameters()[0], 0.9 * w0 + 0.1 * (w0 + 1.0), 1e-6, 1e-6));
  ema.update();
  CHECK(torch::allclose(shadow->parameters()[0], 0.81 * w0 + 0.19 * (w0 + 1.0), 1e-6, 1e-6));
  CHECK_FALSE(shadow->parameters()[0].requires_grad());

  // A checkpoint keeps the average; one written without it says so.
  const auto dir = test::temp_dir("ema-checkpoint");
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  auto gen = at::detail::createCPUGenerator(7);
  save_checkpoint((dir / "with.pt").string(), *model, optimizer, gen, {3, 30}, shadow.get());
  save_checkpoint((dir / "without.pt").string(), *model, optimizer, gen, {3, 30});
  auto model2 = small_mlp();
  auto shadow2 = small_mlp();
  auto loaded = load_checkpoint((dir / "with.pt").string(), *model2, nullptr, nullptr, torch::kCPU, shadow2.get());
  CHECK(loaded.has_ema);
  CHECK(loaded.position.step == 30);
  for (std::size_t i = 0; i < shadow->parameters().size(); ++i) {
    CHECK(torch::equal(shadow->parameters()[i], shadow2->parameters()[i]));
    CHECK(torch::equal(model->parameters()[i], model2->parameters()[i]));
  }
  loaded = load_checkpoint((dir / "without.pt").string(), *model2, nullptr, nullptr, torch::kCPU, shadow2.get());
  CHECK_FALSE(loaded.has_ema);
}
