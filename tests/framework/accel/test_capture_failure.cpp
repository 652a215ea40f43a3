// Every capture can fail safely (cuda_graphs.hpp): a training step or a sampler whose CUDA graph
// capture throws logs one warning and runs eagerly, to the numbers it would have given without
// graphs. The failure is forced (set_forced_capture_failures, DIFFLAB_FORCE_CAPTURE_FAILURE), which
// reaches the same fallback on the CPU, where nothing is captured otherwise.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "accel/cuda_graphs.hpp"
#include "store/run_store.hpp"
#include "support.hpp"
#include "training/optimizer_state.hpp"
#include "training/train_step.hpp"

using namespace difflab;

namespace {

// The warnings spdlog's default logger gets while this lives; the logger before comes back after.
class Warnings {
 public:
  Warnings()
      : saved_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)) {
    sink_->set_pattern("%v");
    auto logger = std::make_shared<spdlog::logger>("capture-failure-test", sink_);
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
  }
  ~Warnings() { spdlog::set_default_logger(saved_); }
  std::vector<std::string> lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::logger> saved_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

// Captures fail on purpose while this lives.
class ForcedFailures {
 public:
  explicit ForcedFailures(CaptureFailures forced) : saved_(forced_capture_failures()) {
    set_forced_capture_failures(forced);
  }
  ~ForcedFailures() { set_forced_capture_failures(saved_); }

 private:
  CaptureFailures saved_;
};

std::shared_ptr<Denoiser> tiny_mlp(std::int64_t classes) {
  torch::manual_seed(11);
  return test::plugins().make_model(
      "mlp", resolve_options(test::plugins().find(PluginKind::model, "mlp")->info.options,
                             {{"hidden", std::int64_t(32)},
                              {"layers", std::int64_t(2)},
                              {"time_embedding", std::int64_t(16)},
                              {"num_classes", classes}},
                             "model 'mlp'"));
}

struct Trained {
  std::vector<double> losses;
  std::vector<torch::Tensor> parameters;
  torch::Tensor generator_state;
  std::int64_t adam_steps = 0;
  bool captured = false;
};

// `steps` steps of a class-conditional MLP on the CPU: graph-safe (GraphedTrainStep, warming up
// for 2 steps before its capture) or eager (TrainStep), with label dropout and clipping.
Trained train(bool graph_safe, int steps) {
  test::SingleThread one_thread;
  const DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  auto model = tiny_mlp(4);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3).weight_decay(0.01));
  const LossSettings loss{/*label_dropout=*/0.2};
  std::shared_ptr<GraphedTrainStep> graphed;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, torch::Generator&)> step;
  if (graph_safe) {
    graphed = std::make_shared<GraphedTrainStep>(*model, process, adam, /*grad_clip=*/0.5, loss,
                                                 /*warmup=*/2);
    step = [&](const torch::Tensor& x0, const torch::Tensor& labels, torch::Generator& g) {
      return (*graphed)(x0, labels, g);
    };
  } else {
    step = TrainStep(*model, process, adam, /*grad_clip=*/0.5, loss);
  }
  auto generator = torch::Generator(at::detail::createCPUGenerator(5));
  torch::manual_seed(9);
  const auto data = torch::randn({steps, 64, 2});
  const auto labels = torch::randint(0, 4, {steps, 64});
  Trained out;
  for (int i = 0; i < steps; ++i)
    out.losses.push_back(step(data[i], labels[i], generator).item<double>());
  for (const auto& p : model->parameters()) out.parameters.push_back(p.detach().clone());
  out.generator_state = generator.get_state();
  const auto first = model->parameters().front();  // a copy: parameters() returns a temporary
  out.adam_steps =
      static_cast<const torch::optim::AdamParamState&>(*adam.state().at(optimizer_state_key(first)))
          .step();
  out.captured = graphed && graphed->captured();
  return out;
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a training step whose capture fails warns once and trains eagerly", "[graphs]") {
  const int steps = 8;
  const auto eager = train(false, steps);
  const auto graph_safe = train(true, steps);  // on the CPU it runs eagerly without a capture
  Warnings warnings;
  Trained forced;
  {
    ForcedFailures force({/*train=*/true, /*sample=*/false});
    forced = train(true, steps);
  }
  const auto lines = warnings.lines();
  REQUIRE(lines.size() == 1);  // at the third step, after the two warm-up steps; never again
  CHECK_THAT(lines[0], Catch::Contains(
                           "CUDA graph capture of a training step failed, so it trains eagerly") &&
                           Catch::Contains("forced"));
  CHECK_FALSE(forced.captured);
  // Every step taken once: the graph-safe step's numbers exactly, the eager step's up to Adam's
  // rounding (DeviceAdam against torch::optim::Adam), the same draws and step count.
  REQUIRE(forced.losses.size() == eager.losses.size());
  for (int i = 0; i < steps; ++i) {
    CHECK(forced.losses[i] == graph_safe.losses[i]);
    CHECK(forced.losses[i] == Approx(eager.losses[i]).epsilon(1e-4));
  }
  CHECK(max_difference(forced.parameters, graph_safe.parameters) == 0);
  CHECK(max_difference(forced.parameters, eager.parameters) < 1e-5);
  CHECK(torch::equal(forced.generator_state, eager.generator_state));
  CHECK(forced.adam_steps == steps);
}

TEST_CASE("a sampler whose capture fails warns once and samples eagerly", "[graphs]") {
  test::SingleThread one_thread;
  const DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  auto model = tiny_mlp(0);
  model->eval();
  const auto sampler = test::plugins().make_sampler(
      "ddim", resolve_options(test::plugins().find(PluginKind::sampler, "ddim")->info.options,
                              {{"steps", std::int64_t(10)}, {"eta", 1.0}}, "sampler 'ddim'"));
  SamplerGraphs graphs;
  Warnings warnings;
  ForcedFailures force({/*train=*/false, /*sample=*/true});
  torch::NoGradGuard no_grad;
  for (int call = 0; call < 3; ++call) {  // warm-up, the capture that fails, eager from then on
    torch::manual_seed(call);
    const auto x_T = torch::randn({16, 2});
    const SamplingContext direct{
        *model, process, torch::Generator(at::detail::createCPUGenerator(7 + call)), {}, {}};
    const SamplingContext through{
        *model, process, torch::Generator(at::detail::createCPUGenerator(7 + call)), {}, {}};
    CHECK(torch::equal(graphs.sample(*sampler, through, x_T), sampler->sample(direct, x_T)));
  }
  const auto lines = warnings.lines();
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0],
             Catch::Contains("CUDA graph capture of a sampler failed, so it runs eagerly"));
}

TEST_CASE(
    "DIFFLAB_FORCE_CAPTURE_FAILURE=train: a run warns once and trains eagerly to the same losses",
    "[graphs][cli]") {
  const auto dir = test::temp_dir("capture-failure");
  const std::string sweep =
      std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";
  const std::string sets =
      " --threads 1 -q --set 'sweep.schedule.plugin=[linear]' --set train.epochs=2"
      " --set train.checkpoint_every=2 --set 'evaluation.samplers=[{plugin: ddim, steps: 5}]'"
      " --set 'evaluation.metrics=[{plugin: test_loss}]'";
  const auto run = [&](const std::string& env, const std::string& name, std::string* out) {
    return test::run_command(env + test::runner_path() + " sweep " + sweep + " --db " +
                                 (dir / name).string() + ".sqlite --out " + (dir / name).string() +
                                 sets,
                             out);
  };
  std::string plain_out, forced_out, bad_out;
  REQUIRE(run("", "plain", &plain_out) == 0);
  REQUIRE(run("DIFFLAB_FORCE_CAPTURE_FAILURE=train ", "forced", &forced_out) == 0);
  CHECK(occurrences(forced_out,
                    "CUDA graph capture of a training step failed, so it trains eagerly") == 1);
  CHECK(occurrences(plain_out, "capture") == 0);

  RunStore plain((dir / "plain.sqlite").string(), RunStore::Access::read_only);
  RunStore forced((dir / "forced.sqlite").string(), RunStore::Access::read_only);
  const auto plain_runs = plain.runs();
  const auto forced_runs = forced.runs();
  REQUIRE(plain_runs.size() == 1);
  REQUIRE(forced_runs.size() == 1);
  const auto a = plain.losses(plain_runs[0].id);
  const auto b = forced.losses(forced_runs[0].id);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].step == a[i].step);
    CHECK(b[i].loss == Approx(a[i].loss).epsilon(1e-4));  // DeviceAdam against torch::optim::Adam
  }

  // Another value is an input error that names the variable.
  CHECK(run("DIFFLAB_FORCE_CAPTURE_FAILURE=always ", "bad", &bad_out) != 0);
  CHECK_THAT(bad_out,
             Catch::Contains(
                 "DIFFLAB_FORCE_CAPTURE_FAILURE=always: expected train, sample or train,sample"));
}
