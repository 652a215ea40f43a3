// The unet model plugin: shapes, the parameter count of a stated layout, option checks, label
// conditioning and dropout, the time embedding, and that it learns to denoise a tiny batch.
#include <chrono>
#include <ctime>
#include <iostream>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "support.hpp"

namespace {
using namespace difflab;

using Given = std::map<std::string, OptionValue>;
using Ints = std::vector<std::int64_t>;

std::shared_ptr<Denoiser> make_unet(Given given = {}) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::model, "unet");
  return registry.make_model("unet", resolve_options(entry.info.options, std::move(given), "unet"));
}

// A small network: 16x16 images, base 8, two levels, attention at 8.
Given tiny(Given more = {}) {
  Given given{{"image_size", std::int64_t{16}},     {"base_channels", std::int64_t{8}},
              {"channel_mult", Ints{1, 2}},         {"blocks_per_level", std::int64_t{1}},
              {"attention_resolutions", Ints{8}},   {"groups", std::int64_t{4}},
              {"attention_heads", std::int64_t{2}}, {"dropout", 0.0}};
  for (auto& [key, value] : more) given[key] = value;
  return given;
}

std::int64_t parameter_count(torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

// The zero-initialised output conv makes every untrained output 0: give it weights to test with.
void randomise_output(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    if (item.key().rfind("output.", 0) == 0) item.value().normal_(0.0, 0.1);
  }
}

std::int64_t conv(std::int64_t in, std::int64_t out, std::int64_t k) {
  return in * out * k * k + out;
}
std::int64_t linear(std::int64_t in, std::int64_t out) {
  return in * out + out;
}
std::int64_t norm(std::int64_t c) {
  return 2 * c;
}
// GN, conv3, time Linear(E, out), GN, conv3, and a 1x1 conv when the channels change.
std::int64_t block(std::int64_t in, std::int64_t out, std::int64_t e) {
  return norm(in) + conv(in, out, 3) + linear(e, out) + norm(out) + conv(out, out, 3) +
         (in != out ? conv(in, out, 1) : 0);
}
std::int64_t attention(std::int64_t c) {
  return norm(c) + conv(c, 3 * c, 1) + conv(c, c, 1);
}

// Batch of 8 16x16 images: a bright 6x6 square on black, at 8 places.
torch::Tensor squares() {
  auto x = torch::full({8, 1, 16, 16}, -1.0f);
  for (int i = 0; i < 8; ++i) x[i][0].narrow(0, i, 6).narrow(1, 8 - i, 6).fill_(1.0f);
  return x;
}


}  // namespace

TEST_CASE("unet keeps the shape of its input", "[unet]") {
  torch::manual_seed(0);
  const auto t = torch::tensor({0.0f, 999.0f});
  struct Case {
    const char* what;
    Given given;
    std::vector<std::int64_t> shape;
  };
  const std::vector<Case> cases{
      {"defaults (base 64, [1, 2, 2], attention at 16)", {}, {2, 1, 32, 32}},
      {"tiny with attention", tiny(), {2, 1, 16, 16}},
      {"no attention", tiny({{"attention_resolutions", Ints{}}}), {2, 1, 16, 16}},
      {"attention at every level, 3 channels, 28x28 (no padding)",
       tiny({{"attention_resolutions", Ints{28, 14}},
             {"in_channels", std::int64_t{3}},
             {"image_size", std::int64_t{28}}}),
       {2, 3, 28, 28}},
      {"three levels, two blocks, conditional",
       tiny({{"channel_mult", Ints{1, 2, 2}},
             {"blocks_per_level", std::int64_t{2}},
             {"num_classes", std::int64_t{10}}}),
       {2, 1, 16, 16}},
      {"one level",
       tiny({{"channel_mult", Ints{2}}, {"attention_resolutions", Ints{16}}}),
       {2, 1, 16, 16}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const auto model = make_unet(c.given);
    randomise_output(*model);
    const auto x = torch::randn(c.shape);
    const auto out = model->forward(x, t, Conditioning{torch::tensor({1, -1}, torch::kLong)});
    REQUIRE(out.sizes() == x.sizes());
    REQUIRE(out.scalar_type() == torch::kFloat32);
    REQUIRE(out.abs().sum().item<float>() > 0.0f);
  }
  const auto model = make_unet(tiny());
  REQUIRE(model->prediction() == Prediction::epsilon);
  REQUIRE(make_unet(tiny({{"prediction", std::string("v")}}))->prediction() == Prediction::v);
  REQUIRE(make_unet(tiny({{"prediction", std::string("x0")}}))->prediction() == Prediction::x0);
  CHECK_THROWS_WITH(model->forward(torch::randn({2, 1, 32, 32}), t, {}),
                    Catch::Contains("[B, 1, 16, 16]") && Catch::Contains("image_size"));
  CHECK_THROWS_WITH(model->forward(torch::randn({2, 2}), t, {}), Catch::Contains("in_channels"));
  // Zero-initialised output conv: the untrained network predicts 0 everywhere.
  REQUIRE(torch::equal(model->forward(torch::randn({2, 1, 16, 16}), t, {}),
                       torch::zeros({2, 1, 16, 16})));
}

TEST_CASE("unet has the parameters of its layout", "[unet]") {
  // tiny(): base 8, time embedding E = 32, levels [8 @ 16x16, 16 @ 8x8], one block per level,
  // attention at 8x8 and in the middle. Skips: input 8, down0 8, down0 resample 8, down1 16.
  const std::int64_t e = 32;
  const std::int64_t expected = conv(1, 8, 3) + linear(8, e) + linear(e, e)  // input, time MLP
                                + block(8, 8, e) + conv(8, 8, 3)             // down0, resample
                                + block(8, 16, e) + attention(16)            // down1
                                + block(16, 16, e) + attention(16) + block(16, 16, e)  // middle
                                + block(16 + 16, 16, e) + attention(16) + block(16 + 8, 16, e) +
                                attention(16)                               // up1
                                + conv(16, 16, 3)                           // up1 resample
                                + block(16 + 8, 8, e) + block(8 + 8, 8, e)  // up0
                                + norm(8) + conv(8, 1, 3);                  // output
  REQUIRE(expected == 44969);
  REQUIRE(parameter_count(*make_unet(tiny())) == expected);
  // Labels add a table of num_classes + 1 rows (the last is "no label") of width E.
  REQUIRE(parameter_count(*make_unet(tiny({{"num_classes", std::int64_t{10}}}))) ==
          expected + 11 * e);
  const auto defaults = parameter_count(*make_unet());
  std::cout << "unet parameters, defaults (base 64, [1, 2, 2], 2 blocks, attention at 16): "
            << defaults << "\n";
  REQUIRE(defaults == 6469889);  // the same sum over the default layout

  // Checkpoints key on these names.
  std::set<std::string> names;
  for (const auto& item : make_unet(tiny())->named_parameters()) names.insert(item.key());
  for (const std::string name :
       {"time_in.weight", "input.weight", "down0_0.conv1.weight", "down0_resample.weight",
        "down1_0.skip.weight", "down1_0_attention.qkv.weight", "middle0_attention.proj.bias",
        "middle1.time.weight", "up1_0.norm1.weight", "up1_resample.bias", "up0_1.conv2.weight",
        "output_norm.weight", "output.bias"}) {
    INFO(name);
    CHECK(names.count(name) == 1);
  }
}

TEST_CASE("unet options are checked and name the option", "[unet]") {
  CHECK_THROWS_AS(make_unet(tiny({{"groups", std::int64_t{3}}})), InputError);
  CHECK_THROWS_WITH(make_unet(tiny({{"groups", std::int64_t{3}}})),
                    Catch::Contains("groups 3 must divide base_channels 8"));
  CHECK_THROWS_WITH(make_unet({{"image_size", std::int64_t{30}}}),
                    Catch::Contains("image_size 30 must be divisible by 2^(levels - 1) = 4"));
  CHECK_THROWS_WITH(make_unet(tiny({{"channel_mult", Ints{}}})), Catch::Contains("channel_mult"));
  CHECK_THROWS_WITH(make_unet(tiny({{"attention_resolutions", Ints{4}}})),
                    Catch::Contains("attention_resolutions: 4 is not a resolution"));
  CHECK_THROWS_WITH(make_unet(tiny({{"attention_heads", std::int64_t{3}}})),
                    Catch::Contains("attention_heads 3 must divide the 16 channels"));
  const auto& entry = test::plugins().get(PluginKind::model, "unet");
  CHECK_THROWS_WITH(resolve_options(entry.info.options, {{"label_dropout", 1.5}}, "unet"),
                    Catch::Contains("label_dropout"));
  CHECK_THROWS_WITH(resolve_options(entry.info.options, {{"channel_mult", Ints{1, 0}}}, "unet"),
                    Catch::Contains("channel_mult"));
  CHECK_THROWS_WITH(resolve_options(entry.info.options, {{"group", std::int64_t{8}}}, "unet"),
                    Catch::Contains("did you mean 'groups'"));
}

TEST_CASE("unet: the output depends on t and labels, and label_dropout 1 removes the labels",
          "[unet]") {
  torch::manual_seed(0);
  const auto x = torch::randn({1, 1, 16, 16}).expand({3, 1, 16, 16}).contiguous();
  const auto t = torch::full({3}, 5.0f);
  const Conditioning labels{torch::tensor({0, 1, 2}, torch::kLong)};
  const Conditioning others{torch::tensor({2, 0, 1}, torch::kLong)};

  const auto model = make_unet(tiny({{"num_classes", std::int64_t{3}}, {"label_dropout", 0.0}}));
  randomise_output(*model);
  model->eval();
  const auto unlabelled = model->forward(x, t, {});
  REQUIRE_FALSE(torch::allclose(unlabelled, model->forward(x, t + 100, {})));
  REQUIRE_FALSE(torch::allclose(unlabelled, model->forward(x, t, labels)));
  REQUIRE_FALSE(torch::allclose(model->forward(x, t, labels), model->forward(x, t, others)));
  // Label -1 and no labels both mean "no label".
  REQUIRE(torch::allclose(unlabelled, model->forward(x, t, {torch::full({3}, -1, torch::kLong)})));
  CHECK_THROWS_WITH(model->forward(x, t, {torch::tensor({0, 1, 3}, torch::kLong)}),
                    Catch::Contains("num_classes = 3"));

  // Training with label_dropout 1: every label becomes "no label", whatever it was.
  const auto dropping = make_unet(tiny({{"num_classes", std::int64_t{3}}, {"label_dropout", 1.0}}));
  randomise_output(*dropping);
  dropping->train();
  const auto a = dropping->forward(x, t, labels);
  REQUIRE(torch::equal(a, dropping->forward(x, t, others)));
  REQUIRE(torch::equal(a, dropping->forward(x, t, {})));
  dropping->eval();  // evaluation keeps the labels
  REQUIRE_FALSE(torch::allclose(dropping->forward(x, t, labels), dropping->forward(x, t, others)));

  // An unconditional model ignores labels.
  const auto unconditional = make_unet(tiny());
  randomise_output(*unconditional);
  REQUIRE(torch::equal(unconditional->forward(x, t, {}), unconditional->forward(x, t, labels)));
}

TEST_CASE("unet learns to denoise a tiny fixed batch", "[unet]") {
  test::SingleThread single_thread;
  torch::manual_seed(0);
  const DiffusionProcess process(torch::linspace(1e-4, 0.02, 1000, torch::kFloat64), torch::kCPU);
  const auto model = make_unet(tiny());
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(2e-3));
  const auto x0 = squares();
  const auto loss_on = [&](const torch::Tensor& t, const torch::Tensor& noise) {
    const auto out = model->forward(process.q_sample(x0, t, noise), t.to(torch::kFloat32), {});
    return torch::mse_loss(out, noise);
  };
  // Fixed noise at 64 timesteps spread over 0..999 (8 rounds of the batch).
  std::vector<std::pair<torch::Tensor, torch::Tensor>> held_out;
  for (int round = 0; round < 8; ++round) {
    held_out.emplace_back(torch::arange(round, 1000, 125, torch::kLong).slice(0, 0, 8),
                          torch::randn(x0.sizes()));
  }
  const auto held_out_loss = [&] {
    torch::NoGradGuard no_grad;
    double sum = 0;
    for (const auto& [t, noise] : held_out) sum += loss_on(t, noise).item<double>();
    return sum / double(held_out.size());
  };
  const double before = held_out_loss();
  const auto start = std::chrono::steady_clock::now();
  const int steps = 150;
  for (int step = 0; step < steps; ++step) {
    const auto t = torch::randint(0, 1000, {8}, torch::kLong);
    const auto loss = loss_on(t, torch::randn(x0.sizes()));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  const double after = held_out_loss();
  std::cout << "unet tiny (44969 parameters), 8 images 16x16, 1 thread: " << steps
            << " Adam steps in " << seconds.count() << " s; held-out loss " << before << " -> "
            << after << "\n";
  CAPTURE(before, after);
  REQUIRE(before == Approx(1.0).epsilon(0.1));  // the zero output conv predicts 0: E[eps^2] = 1
  REQUIRE(after < 0.3 * before);
}

// Hidden (run it by name): wall and CPU seconds per training step (forward, backward, Adam) of
// base 32 at batch 128, on 1 and 2 threads. CPU time stays honest on a busy machine.
TEST_CASE("unet training speed, batch 128 of 32x32", "[.][unet-speed]") {
  const int saved_threads = torch::get_num_threads();
  const DiffusionProcess process(torch::linspace(1e-4, 0.02, 1000, torch::kFloat64), torch::kCPU);
  const auto x0 = torch::rand({128, 1, 32, 32}) * 2 - 1;
  for (const auto& [what, given] : std::vector<std::pair<std::string, Given>>{
           {"attention at 16, 1 head", {{"base_channels", std::int64_t{32}}}},
           {"attention at 16, 4 heads",
            {{"base_channels", std::int64_t{32}}, {"attention_heads", std::int64_t{4}}}},
           {"no attention",
            {{"base_channels", std::int64_t{32}}, {"attention_resolutions", Ints{}}}}}) {
    for (const int threads : {1, 2}) {
      torch::set_num_threads(threads);
      torch::manual_seed(0);
      const auto model = make_unet(given);
      torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(2e-4));
      const auto step = [&] {
        const auto t = torch::randint(0, 1000, {128}, torch::kLong);
        const auto noise = torch::randn(x0.sizes());
        const auto out = model->forward(process.q_sample(x0, t, noise), t.to(torch::kFloat32), {});
        const auto loss = torch::mse_loss(out, noise);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
      };
      step();  // warm-up
      const int steps = 2;
      const auto cpu_start = std::clock();
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < steps; ++i) step();
      const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
      const double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
      std::cout << "unet base 32, " << what << " (" << parameter_count(*model) << " parameters), "
                << threads << " threads: " << wall.count() / steps << " s wall, " << cpu / steps
                << " s CPU per step\n";
    }
  }
  torch::set_num_threads(saved_threads);
}
