// The mlp model plugin: shapes, parameter counts by formula, options, and that it learns.
#include <catch2/catch.hpp>

#include <set>

#include "difflab/errors.hpp"
#include "support.hpp"

namespace {
using namespace difflab;

std::shared_ptr<Denoiser> make_mlp(std::map<std::string, OptionValue> given = {}) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::model, "mlp");
  return registry.make_model("mlp", resolve_options(entry.info.options, std::move(given), "mlp"));
}

std::int64_t parameter_count(torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::int64_t linear_parameters(std::int64_t in, std::int64_t out) { return in * out + out; }

// input projection + two-layer time MLP + hidden stack + output (+ label table with a null row).
std::int64_t expected_parameters(std::int64_t data_dim, std::int64_t hidden, std::int64_t layers,
                                 std::int64_t embedding, bool residual, std::int64_t classes) {
  return linear_parameters(data_dim, hidden) + linear_parameters(embedding, hidden) +
         linear_parameters(hidden, hidden) +
         layers * (residual ? 2 : 1) * linear_parameters(hidden, hidden) +
         linear_parameters(hidden, data_dim) + (classes > 0 ? (classes + 1) * hidden : 0);
}

struct Batch {
  torch::Tensor x_t, t, noise;
};

std::set<std::string> parameter_names(torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) names.insert(item.key());
  return names;
}


}  // namespace

TEST_CASE("mlp keeps the shape of its input", "[mlp]") {
  torch::manual_seed(0);
  const auto model = make_mlp();
  REQUIRE(model->prediction() == Prediction::epsilon);
  const auto out = model->forward(torch::randn({8, 2}), torch::arange(8).to(torch::kFloat32), {});
  REQUIRE(out.sizes() == torch::IntArrayRef({8, 2}));
  REQUIRE(out.scalar_type() == torch::kFloat32);

  const auto wide = make_mlp({{"data_dim", std::int64_t{3}}, {"hidden", std::int64_t{16}}});
  REQUIRE(wide->forward(torch::randn({5, 3}), torch::zeros({5}), {}).sizes() ==
          torch::IntArrayRef({5, 3}));
  // Images are flattened and come back in their own shape.
  const auto image = make_mlp({{"data_dim", std::int64_t{16}}, {"hidden", std::int64_t{16}}});
  REQUIRE(image->forward(torch::randn({4, 1, 4, 4}), torch::zeros({4}), {}).sizes() ==
          torch::IntArrayRef({4, 1, 4, 4}));
  REQUIRE_THROWS_WITH(image->forward(torch::randn({4, 3}), torch::zeros({4}), {}),
                      Catch::Contains("data_dim = 16"));
}

TEST_CASE("mlp has the parameters its options describe", "[mlp]") {
  REQUIRE(parameter_count(*make_mlp()) == expected_parameters(2, 256, 3, 128, false, 0));
  const std::map<std::string, OptionValue> small{{"hidden", std::int64_t{32}},
                                                 {"layers", std::int64_t{4}},
                                                 {"time_embedding", std::int64_t{16}}};
  const auto plain = make_mlp(small);
  auto options = small;
  options["residual"] = true;
  const auto residual = make_mlp(options);
  REQUIRE(parameter_count(*plain) == expected_parameters(2, 32, 4, 16, false, 0));
  REQUIRE(parameter_count(*residual) == expected_parameters(2, 32, 4, 16, true, 0));
  REQUIRE(parameter_count(*residual) - parameter_count(*plain) == 4 * (32 * 32 + 32));
  options["num_classes"] = std::int64_t{10};
  REQUIRE(parameter_count(*make_mlp(options)) == expected_parameters(2, 32, 4, 16, true, 10));

  // Checkpoints key on these names.
  const auto plain_names = parameter_names(*plain);
  for (const std::string name : {"input.weight", "time_in.weight", "time_out.bias", "block0.weight",
                                 "block3.bias", "output.weight"}) {
    REQUIRE(plain_names.count(name) == 1);
  }
  const auto residual_names = parameter_names(*residual);
  REQUIRE(residual_names.count("block3.fc1.weight") == 1);
  REQUIRE(residual_names.count("block3.fc2.bias") == 1);
}

TEST_CASE("mlp options: prediction, time embedding and labels", "[mlp]") {
  torch::manual_seed(0);
  REQUIRE(make_mlp({{"prediction", std::string("x0")}})->prediction() == Prediction::x0);
  REQUIRE(make_mlp({{"prediction", std::string("v")}})->prediction() == Prediction::v);
  REQUIRE_THROWS_AS(make_mlp({{"prediction", std::string("score")}}), InputError);
  REQUIRE_THROWS_WITH(make_mlp({{"time_embedding", std::int64_t{15}}}), Catch::Contains("even"));

  const auto model = make_mlp({{"hidden", std::int64_t{32}}, {"num_classes", std::int64_t{3}}});
  const auto x = torch::randn({1, 2}).expand({3, 2}).contiguous();
  const auto t = torch::full({3}, 5.0);
  // The output depends on t.
  REQUIRE_FALSE(torch::allclose(model->forward(x, t, {}), model->forward(x, t + 50, {})));
  // Undefined labels and label -1 both mean "no label".
  const auto unlabelled = model->forward(x, t, {});
  Conditioning none{torch::full({3}, -1, torch::kLong)};
  REQUIRE(torch::allclose(unlabelled, model->forward(x, t, none)));
  Conditioning labels{torch::tensor({0, 1, 2}, torch::kLong)};
  REQUIRE_FALSE(torch::allclose(unlabelled, model->forward(x, t, labels)));
  Conditioning out_of_range{torch::tensor({0, 1, 3}, torch::kLong)};
  REQUIRE_THROWS_WITH(model->forward(x, t, out_of_range), Catch::Contains("num_classes = 3"));
  // An unconditional model ignores labels.
  const auto unconditional = make_mlp({{"hidden", std::int64_t{32}}});
  REQUIRE(torch::equal(unconditional->forward(x, t, {}), unconditional->forward(x, t, labels)));
}

TEST_CASE("mlp learns to predict the noise of a small problem", "[mlp]") {
  test::SingleThread single_thread;
  torch::manual_seed(0);
  const DiffusionProcess process(torch::linspace(1e-4, 0.2, 100, torch::kFloat64), torch::kCPU);
  for (const bool residual : {false, true}) {
    INFO("residual = " << residual);
    const auto model = make_mlp({{"hidden", std::int64_t{64}},
                                 {"layers", std::int64_t{2}},
                                 {"time_embedding", std::int64_t{16}},
                                 {"residual", residual}});
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(3e-3));
    const auto center = torch::tensor({1.0f, -1.0f});
    // Data N((1, -1), 0.3^2 I), noised at uniform random timesteps (Ho et al. 2020, Alg. 1).
    const auto draw = [&](std::int64_t n) {
      Batch batch;
      const auto x0 = center + 0.3 * torch::randn({n, 2});
      batch.t = torch::randint(0, 100, {n}, torch::kLong);
      batch.noise = torch::randn({n, 2});
      batch.x_t = process.q_sample(x0, batch.t, batch.noise);
      return batch;
    };
    const auto loss_on = [&](const Batch& batch) {
      const auto out = model->forward(batch.x_t, batch.t.to(torch::kFloat32), {});
      return torch::mse_loss(out, batch.noise);
    };
    const auto held_out = draw(2048);
    const auto held_out_loss = [&] {
      torch::NoGradGuard no_grad;
      return loss_on(held_out).item<double>();
    };
    const double before = held_out_loss();
    for (int step = 0; step < 300; ++step) {
      const auto loss = loss_on(draw(256));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
    const double after = held_out_loss();
    CAPTURE(before, after);
    REQUIRE(after < 0.6 * before);
  }
}

TEST_CASE("mlp computes the time branch once for a sampler's step, to the per-row outputs and gradients",
          "[mlp]") {
  test::SingleThread one_thread;
  torch::manual_seed(3);
  const auto model = make_mlp({{"hidden", std::int64_t(128)}, {"layers", std::int64_t(3)},
                               {"time_embedding", std::int64_t(128)}});
  const auto x = torch::randn({1000, 2});
  // What a sampler's step passes (timestep_batch): one value viewed 1000 times, stride 0.
  const auto viewed = timestep_batch(x, 417.0);
  REQUIRE(viewed.stride(0) == 0);
  const auto rows = viewed.contiguous();  // the same values, one per row: the per-row branch
  REQUIRE(rows.stride(0) == 1);
  const auto outputs = [&](const torch::Tensor& t) {
    model->zero_grad();
    const auto out = model->forward(x, t, {});
    out.pow(2).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(out.detach(), grads);
  };
  const auto [once, once_grads] = outputs(viewed);
  const auto [per_row, per_row_grads] = outputs(rows);
  CHECK(torch::allclose(once, per_row, 1e-6, 1e-6));
  CHECK((once - per_row).abs().max().item<double>() <= 1e-6 * per_row.abs().max().item<double>());
  REQUIRE(once_grads.size() == per_row_grads.size());
  for (std::size_t i = 0; i < once_grads.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::allclose(once_grads[i], per_row_grads[i], 1e-5, 1e-5));
  }
  // A batch of different timesteps (training) still gets one branch row per sample.
  const auto mixed = torch::arange(1000, torch::kFloat32);
  const auto [mixed_out, mixed_grads] = outputs(mixed);
  CHECK(!torch::allclose(mixed_out, once));
}

