// difflab_bench: the difflab side of bench/run.sh. Times the engine's own training step
// (TrainStep, the engine's epoch loop) and a sampler plugin on grid point 0 of a sweep file, with
// the real plugins, and prints one JSON object, as bench/python/train_sample.py does for PyTorch.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "accel/allocator.hpp"
#include "accel/blas.hpp"
#include "difflab/errors.hpp"
#include "difflab/linear.hpp"
#include "loader/registry.hpp"
#include "engine/engine.hpp"
#include "store/run_store.hpp"
#include "config/sweep_grid.hpp"
#include "training/train_step.hpp"

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
    "usage: difflab_bench train|sample|overhead SWEEP_FILE --threads N [--set KEY=VALUE]... [--steps N]\n"
    "                     [--warmup N] [--repeats N] [--samples N]\n"
    "  train:    optimizer steps/s of grid point 0 (median of the repeats, each --steps steps)\n"
    "  sample:   seconds of its first evaluation sampler on --samples points (median)\n"
    "  overhead: grid point 0 run by the engine (store, checkpoints, logging) against the bare\n"
    "            loop of the same steps, alternating --repeats times in this process\n";

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
  if (positional.size() != 2 ||
      (positional[0] != "train" && positional[0] != "sample" && positional[0] != "overhead") ||
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

// Grid point 0's training set-up, as the engine makes it, and its bare epoch loop.
struct BareTraining {
  torch::Device device;
  torch::Tensor x;
  std::unique_ptr<DiffusionProcess> process;
  std::shared_ptr<Denoiser> model;
  std::unique_ptr<torch::optim::Adam> optimizer;
  std::unique_ptr<TrainStep> step;
  torch::Generator gen;
  std::int64_t batch, steps_per_epoch;

  BareTraining(const RunConfig& run, const Registry& registry) : device(resolve_device(run.device)) {
    const auto dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
    x = dataset->load(Split::train, derive_seed(run.seed, "data")).x.to(device);
    process = std::make_unique<DiffusionProcess>(
        registry.make_schedule(run.schedule.plugin, run.schedule.options)->betas(), device);
    torch::manual_seed(derive_seed(run.seed, "model-init"));
    model = registry.make_model(run.model.plugin, run.model.options);
    model->to(device);
    model->train();
    optimizer = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(run.train.lr));
    step = std::make_unique<TrainStep>(*model, *process, *optimizer, run.train.grad_clip);
    gen = make_generator(device, derive_seed(run.seed, "train"));
    batch = std::min(run.train.batch_size, x.size(0));
    steps_per_epoch = x.size(0) / batch;
  }

  // The engine's epoch loop: a permutation, full batches, the loss read back once per epoch.
  void train(std::int64_t steps) {
    const auto n = x.size(0);
    for (std::int64_t done = 0; done < steps;) {
      const auto order = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong).device(device));
      auto loss_sum = torch::zeros({}, x.options());
      const auto this_epoch = std::min(steps_per_epoch, steps - done);
      for (std::int64_t b = 0; b < this_epoch; ++b) {
        loss_sum += (*step)(x.index_select(0, order.slice(0, b * batch, (b + 1) * batch)), {}, gen);
      }
      (void)loss_sum.item<double>();
      done += this_epoch;
    }
  }
};

nlohmann::json bench_train(const Args& a, const RunConfig& run, const Registry& registry) {
  BareTraining bare(run, registry);
  bare.train(a.warmup);
  std::vector<double> times;
  for (std::int64_t r = 0; r < a.repeats; ++r) {
    const auto start = Clock::now();
    bare.train(a.steps);
    times.push_back(seconds_since(start));
  }
  return {{"steps_per_s", double(a.steps) / median(times)}, {"seconds", times}, {"steps", a.steps}};
}

// What the runner adds to a training run: grid point 0 as `runner sweep` runs it (set-up, store
// writes, checkpoint files, log lines) against the bare loop of the same steps with the same
// set-up, alternating in one process. Both wall times swing by 10-30% from one repeat to the
// next on this shared machine, more than the overhead, so the figure is the time the engine
// spends outside its training loop (its wall time less its own train_seconds and the bare
// set-up) as a share of that loop; the loop itself is TrainStep in both.
nlohmann::json bench_overhead(const Args& a, SweepGrid grid, const Registry& registry) {
  grid.runs.resize(1);
  const auto& run = grid.runs.front();
  const auto work = std::filesystem::temp_directory_path() /
                    ("difflab-bench-overhead-" + std::to_string(::getpid()));
  std::vector<double> bare_setup, bare_loop, engine_wall, engine_train, outside;
  std::int64_t steps = 0;
  BareTraining(run, registry).train(50);  // warm-up
  for (std::int64_t r = 0; r < a.repeats; ++r) {
    auto start = Clock::now();
    BareTraining bare(run, registry);
    bare_setup.push_back(seconds_since(start));
    steps = run.train.steps > 0 ? run.train.steps : run.train.epochs * bare.steps_per_epoch;
    start = Clock::now();
    bare.train(steps);
    bare_loop.push_back(seconds_since(start));

    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    start = Clock::now();
    RunStore store((work / "runs.sqlite").string());
    SweepOptions options;
    options.engine.out_dir = work / "runs";
    if (run_sweep(grid, store, registry, options).done != 1) throw std::runtime_error("the engine's run did not finish");
    engine_wall.push_back(seconds_since(start));
    engine_train.push_back(store.runs().at(0).train_seconds);
    outside.push_back((engine_wall.back() - engine_train.back() - bare_setup.back()) / engine_train.back());
  }
  std::filesystem::remove_all(work);
  return {{"steps", steps}, {"bare_setup_seconds", bare_setup}, {"bare_loop_seconds", bare_loop},
          {"engine_seconds", engine_wall}, {"engine_train_seconds", engine_train},
          {"outside_loop_fraction", outside}, {"overhead", median(outside)},
          {"wall_ratio", median(engine_wall) / (median(bare_loop) + median(bare_setup)) - 1.0}};
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
    // The engine's log lines (overhead mode) go to stderr, as the runner's do: stdout is the JSON.
    spdlog::set_default_logger(spdlog::stderr_color_mt("difflab_bench"));
    const auto allocator = configure_allocator();
    const auto blas = configure_blas();
    const int threads = configure_threads(a.threads);
    auto& registry = Registry::instance();
    registry.load_default();
    const auto grid = load_sweep(a.file, a.overrides, registry);
    const auto& run = grid.runs.at(0);
    auto out = a.what == "train"    ? bench_train(a, run, registry)
               : a.what == "sample" ? bench_sample(a, run, registry)
                                    : bench_overhead(a, grid, registry);
    out["side"] = "difflab";
    out["what"] = a.what;
    out["threads"] = torch::get_num_threads();
    out["requested_threads"] = threads;
    out["blas"] = blas.library + " (" + blas.threading + ")";
    out["allocator"] = allocator;
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
