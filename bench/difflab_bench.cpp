// difflab_bench: the difflab side of bench/run.sh. Times the engine's own training step
// (TrainStep, the engine's epoch loop) and a sampler plugin on grid point 0 of a sweep file, with
// the real plugins, and prints one JSON object, as bench/python/train_sample.py does for PyTorch.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blas.hpp"
#include "difflab/errors.hpp"
#include "difflab/linear.hpp"
#include "difflab/registry.hpp"
#include "engine.hpp"
#include "sweep_grid.hpp"
#include "train_step.hpp"

namespace {
using namespace difflab;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string what, file;
  std::vector<std::string> overrides;
  int threads = 0;
  std::int64_t steps = 200, warmup = 20, repeats = 3, samples = 10000;
};

const char* kUsage =
    "usage: difflab_bench train|sample SWEEP_FILE --threads N [--set KEY=VALUE]... [--steps N]\n"
    "                     [--warmup N] [--repeats N] [--samples N]\n"
    "  train:  optimizer steps/s of grid point 0 (median of the repeats, each --steps steps)\n"
    "  sample: seconds of its first evaluation sampler on --samples points (median)\n";

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw InputError(arg + ": needs a value");
      return argv[++i];
    };
    if (arg == "--set") a.overrides.push_back(value());
    else if (arg == "--threads") a.threads = std::stoi(value());
    else if (arg == "--steps") a.steps = std::stoll(value());
    else if (arg == "--warmup") a.warmup = std::stoll(value());
    else if (arg == "--repeats") a.repeats = std::stoll(value());
    else if (arg == "--samples") a.samples = std::stoll(value());
    else if (arg.rfind("--", 0) == 0) throw InputError("unknown option " + arg);
    else positional.push_back(arg);
  }
  if (positional.size() != 2 || (positional[0] != "train" && positional[0] != "sample") ||
      a.threads < 1 || a.steps < 1 || a.repeats < 1 || a.samples < 1 || a.warmup < 0) {
    throw InputError(std::string("bad arguments\n") + kUsage);
  }
  a.what = positional[0];
  a.file = positional[1];
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

nlohmann::json bench_train(const Args& a, const RunConfig& run, const Registry& registry) {
  const auto device = resolve_device(run.device);
  const auto dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  const auto x = dataset->load(Split::train, derive_seed(run.seed, "data")).x.to(device);
  const DiffusionProcess process(registry.make_schedule(run.schedule.plugin, run.schedule.options)->betas(), device);
  torch::manual_seed(derive_seed(run.seed, "model-init"));
  auto model = registry.make_model(run.model.plugin, run.model.options);
  model->to(device);
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(run.train.lr));
  TrainStep step(*model, process, optimizer, run.train.grad_clip);
  auto gen = make_generator(device, derive_seed(run.seed, "train"));
  const std::int64_t n = x.size(0);
  const std::int64_t batch = std::min(run.train.batch_size, n);
  const std::int64_t steps_per_epoch = n / batch;

  // The engine's epoch loop: a permutation, full batches, the loss read back once per epoch.
  const auto train = [&](std::int64_t steps) {
    for (std::int64_t done = 0; done < steps;) {
      const auto order = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong).device(device));
      auto loss_sum = torch::zeros({}, x.options());
      const auto this_epoch = std::min(steps_per_epoch, steps - done);
      for (std::int64_t b = 0; b < this_epoch; ++b) {
        loss_sum += step(x.index_select(0, order.slice(0, b * batch, (b + 1) * batch)), {}, gen);
      }
      (void)loss_sum.item<double>();
      done += this_epoch;
    }
  };
  train(a.warmup);
  std::vector<double> times;
  for (std::int64_t r = 0; r < a.repeats; ++r) {
    const auto start = Clock::now();
    train(a.steps);
    times.push_back(seconds_since(start));
  }
  return {{"steps_per_s", double(a.steps) / median(times)}, {"seconds", times}, {"steps", a.steps}};
}

nlohmann::json bench_sample(const Args& a, const RunConfig& run, const Registry& registry) {
  if (run.evaluation.samplers.empty()) throw InputError(a.file + ": evaluation.samplers is empty");
  const auto& sampler_config = run.evaluation.samplers.front();
  const auto device = resolve_device(run.device);
  const auto schedule = registry.make_schedule(run.schedule.plugin, run.schedule.options);
  const DiffusionProcess process(schedule->betas(), device);
  // Warm-up on the first few timesteps only: the same kernels, a fraction of the time.
  const auto warm_betas = schedule->betas().slice(0, 0, std::max<std::int64_t>(1, a.warmup));
  const DiffusionProcess warm_process(warm_betas, device);
  torch::manual_seed(derive_seed(run.seed, "model-init"));
  auto model = registry.make_model(run.model.plugin, run.model.options);
  model->to(device);
  model->eval();
  const auto sampler = registry.make_sampler(sampler_config.plugin, sampler_config.options);
  torch::NoGradGuard no_grad;
  auto gen = make_generator(device, derive_seed(run.seed, "sampler"));
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  sampler->sample({*model, warm_process, gen, {}, {}}, torch::randn({a.samples, 2}, gen, options));
  std::vector<double> times;
  for (std::int64_t r = 0; r < a.repeats; ++r) {
    const auto x_T = torch::randn({a.samples, 2}, gen, options);
    const auto start = Clock::now();
    const auto x = sampler->sample({*model, process, gen, {}, {}}, x_T);
    (void)x.sum().item<double>();
    times.push_back(seconds_since(start));
  }
  return {{"seconds_median", median(times)}, {"seconds", times}, {"samples", a.samples},
          {"timesteps", process.timesteps()}, {"sampler", sampler_config.label}};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto a = parse(argc, argv);
    const auto blas = configure_blas();
    const int threads = configure_threads(a.threads);
    auto& registry = Registry::instance();
    registry.load_default();
    const auto grid = load_sweep(a.file, a.overrides, registry);
    const auto& run = grid.runs.at(0);
    auto out = a.what == "train" ? bench_train(a, run, registry) : bench_sample(a, run, registry);
    out["side"] = "difflab";
    out["what"] = a.what;
    out["threads"] = torch::get_num_threads();
    out["requested_threads"] = threads;
    out["blas"] = blas.library + " (" + blas.threading + ")";
    out["cpu_gemm"] = cpu_gemm() == CpuGemm::onednn ? "onednn" : "torch";
    out["model"] = run.model.label;
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const InputError& e) {
    std::cerr << "difflab_bench: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "difflab_bench: error: " << e.what() << "\n";
    return 1;
  }
}
