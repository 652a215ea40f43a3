// The graph-safe training step (cuda_graphs.hpp) against the eager one. On the CPU the graphed
// step runs its body eagerly, which checks DeviceAdam's device-side arithmetic and the draw order;
// on a CUDA machine the same cases capture and replay a real CUDA graph.
#include <catch2/catch.hpp>

#include "accel/cuda_graphs.hpp"
#include "training/optimizer_state.hpp"
#include "support.hpp"
#include "training/train_step.hpp"
#include "training/training_schedule.hpp"

using namespace difflab;

namespace {

std::shared_ptr<Denoiser> tiny_mlp(std::uint64_t seed, torch::Device device) {
  torch::manual_seed(seed);
  auto model = test::plugins().make_model(
      "mlp", resolve_options(test::plugins().find(PluginKind::model, "mlp")->info.options,
                             {{"hidden", std::int64_t(32)}, {"layers", std::int64_t(2)},
                              {"time_embedding", std::int64_t(16)}, {"num_classes", std::int64_t(4)}},
                             "model 'mlp'"));
  model->to(device);
  return model;
}

std::unique_ptr<torch::optim::Optimizer> make_adam(Denoiser& model, bool decoupled) {
  if (decoupled) {
    return std::make_unique<torch::optim::AdamW>(model.parameters(),
                                                 torch::optim::AdamWOptions(3e-3).weight_decay(0.05));
  }
  return std::make_unique<torch::optim::Adam>(model.parameters(),
                                              torch::optim::AdamOptions(3e-3).weight_decay(0.01));
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  }
  return worst;
}

// Trains two copies of one model side by side, eagerly and graph-safe, and compares them.
void compare_steps(torch::Device device, bool decoupled) {
  test::SingleThread one_thread;
  const DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), device);
  auto eager_model = tiny_mlp(11, device);
  auto graphed_model = tiny_mlp(11, device);
  auto eager_opt = make_adam(*eager_model, decoupled);
  auto graphed_opt = make_adam(*graphed_model, decoupled);
  TrainStep eager(*eager_model, process, *eager_opt, /*grad_clip=*/0.5, LossSettings{/*label_dropout=*/0.2});
  GraphedTrainStep graphed(*graphed_model, process, *graphed_opt, 0.5, LossSettings{0.2}, /*warmup=*/2);
  auto eager_gen = torch::Generator(at::detail::createCPUGenerator(5));
  auto graphed_gen = torch::Generator(at::detail::createCPUGenerator(5));
  if (device.is_cuda()) {
    eager_gen = at::globalContext().defaultGenerator(device).clone();
    eager_gen.set_current_seed(5);
    graphed_gen = eager_gen.clone();
  }
  torch::manual_seed(9);
  const auto data = torch::randn({12, 64, 2}).to(device);
  const auto labels = torch::randint(0, 4, {12, 64}).to(device);
  for (int i = 0; i < 12; ++i) {
    if (i == 6) {  // a learning-rate schedule changes the rate between steps
      set_learning_rate(*eager_opt, 1e-3);
      set_learning_rate(*graphed_opt, 1e-3);
    }
    const double want = eager(data[i], labels[i], eager_gen).item<double>();
    const double got = graphed(data[i], labels[i], graphed_gen).item<double>();
    CHECK(got == Approx(want).epsilon(1e-4));
  }
  CHECK(graphed.captured() == (device.is_cuda() && cuda_graphs_enabled()));
  // The same draws: the generators end in the same state.
  CHECK(torch::equal(eager_gen.get_state(), graphed_gen.get_state()));
  CHECK(max_difference(eager_model->parameters(), graphed_model->parameters()) < 1e-5);
  // The optimizer state is torch::optim's, with the host step count a checkpoint saves.
  const auto eager_params = eager_model->parameters();
  const auto graphed_params = graphed_model->parameters();
  for (std::size_t i = 0; i < eager_params.size(); ++i) {
    const auto& p_eager = eager_params[i];
    const auto& p_graphed = graphed_params[i];
    const auto& s_eager = *eager_opt->state().at(optimizer_state_key(p_eager));
    const auto& s_graphed = *graphed_opt->state().at(optimizer_state_key(p_graphed));
    if (decoupled) {
      const auto& a = static_cast<const torch::optim::AdamWParamState&>(s_eager);
      const auto& b = static_cast<const torch::optim::AdamWParamState&>(s_graphed);
      CHECK(b.step() == a.step());
      CHECK((a.exp_avg_sq() - b.exp_avg_sq()).abs().max().item<double>() < 1e-6);
    } else {
      const auto& a = static_cast<const torch::optim::AdamParamState&>(s_eager);
      const auto& b = static_cast<const torch::optim::AdamParamState&>(s_graphed);
      CHECK(b.step() == a.step());
      CHECK(b.step() == 12);
      CHECK((a.exp_avg() - b.exp_avg()).abs().max().item<double>() < 1e-6);
    }
  }
}

}  // namespace

TEST_CASE("the graph-safe training step computes what the eager step computes", "[graphs]") {
  SECTION("Adam with L2 weight decay") { compare_steps(torch::kCPU, false); }
  SECTION("AdamW") { compare_steps(torch::kCPU, true); }
  if (torch::cuda::is_available()) {
    SECTION("Adam on CUDA, captured and replayed") { compare_steps(torch::Device(torch::kCUDA, 0), false); }
  } else {
    WARN("no CUDA device: the CUDA graph capture itself is not exercised here");
  }
}

TEST_CASE("DeviceAdam resumes from torch::optim::Adam's state and refuses amsgrad", "[graphs]") {
  test::SingleThread one_thread;
  auto model = tiny_mlp(2, torch::kCPU);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (auto& p : model->parameters()) p.mutable_grad() = torch::ones_like(p);
  adam.step();
  adam.step();
  DeviceAdam device_adam(adam);  // picks up step 2 and the moments in place
  const auto before = model->parameters().front().clone();
  device_adam.step();
  device_adam.count_step();
  const auto& state = static_cast<const torch::optim::AdamParamState&>(
      *adam.state().at(optimizer_state_key(model->parameters().front())));
  CHECK(state.step() == 3);
  // A constant gradient keeps m_hat / sqrt(v_hat) at 1, so each step moves by lr (less eps's share).
  const double moved = (before - model->parameters().front()).mean().item<double>();
  CHECK(moved == Approx(1e-3).epsilon(1e-4));

  torch::optim::Adam amsgrad(model->parameters(), torch::optim::AdamOptions(1e-3).amsgrad(true));
  CHECK_FALSE(DeviceAdam::supports(amsgrad));
  CHECK_THROWS_AS(DeviceAdam(amsgrad), std::invalid_argument);
}

TEST_CASE("CUDA graphs can be turned off", "[graphs]") {
  const bool before = cuda_graphs_enabled();
  set_cuda_graphs_enabled(false);
  CHECK_FALSE(cuda_graphs_enabled());
  set_cuda_graphs_enabled(true);
  CHECK(cuda_graphs_enabled() == cuda_graphs_built());
  set_cuda_graphs_enabled(before);
}
