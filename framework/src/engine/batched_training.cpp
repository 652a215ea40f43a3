#include "engine/batched_training.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "engine/run_context.hpp"
#include "engine/trainer.hpp"
#include "training/checkpoint.hpp"
#include "training/crash_point.hpp"
#include "accel/cuda_graphs.hpp"
#include "difflab/errors.hpp"
#include "training/optimizer_state.hpp"
#include "training/train_step.hpp"
#include "training/training_schedule.hpp"

namespace difflab {
namespace fs = std::filesystem;

std::string batching_obstacle(const RunConfig& run, const Registry& registry) {
  if (run.task == Task::autoencoder) return "an autoencoder run is not batched";
  if (is_latent(run)) return "a latent diffusion run is not batched";
  if (run.train.ema_decay > 0) return "train.ema_decay is not batched";
  if (run.train.label_dropout > 0) return "train.label_dropout is not batched";
  if (run.train.loss_weighting != "none") return "train.loss_weighting is not batched";
  if (run.train.optimizer != "adam" && run.train.optimizer != "adamw") return "optimizer " + run.train.optimizer;
  // Making the model draws its initial weights from torch's global generator: put it back, so
  // that asking changes nothing a run draws later.
  std::lock_guard<std::mutex> seed_lock(global_seed_mutex());  // as runs initialise their models
  auto global = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    state = global.get_state();
  }
  std::string why;
  try {
    why = registry.make_model(run.model.plugin, run.model.options)->batching_obstacle();
  } catch (const std::exception& e) {  // training alone reports it, with the run
    why = std::string("cannot be made (") + e.what() + ")";
  }
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_state(state);
  }
  return why.empty() ? "" : run.model.plugin + " " + why;  // "mlp with residual blocks has no ..."
}

std::string batch_key(const RunConfig& run) {
  const auto& j = run.json;
  return nlohmann::json{{"device", j.at("device")}, {"dataset", j.at("dataset")},
                        {"model", j.at("model")}, {"train", j.at("train")}}
      .dump();
}

namespace {

// One member of a batch: what RunExecutor's context holds for a run, minus evaluation.
struct Member {
  const RunConfig* run = nullptr;
  std::int64_t run_id = 0;
  std::shared_ptr<Denoiser> model;
  torch::Tensor train_x;
  std::unique_ptr<DiffusionProcess> process;
  torch::Generator generator;
  fs::path run_dir;
  std::vector<LossRecord> pending_losses;
};

// Member k's optimizer as it would be after training alone: its slice of each moment, the step
// count and the current learning rate (Adam and AdamW are elementwise, so the slices are exact).
template <typename Optim, typename State, typename Opts>
std::unique_ptr<torch::optim::Optimizer> member_optimizer(const TrainConfig& train, torch::optim::Optimizer& stacked,
                                                          const std::vector<torch::Tensor>& stacked_params,
                                                          const std::vector<torch::Tensor>& member_params,
                                                          std::int64_t k) {
  auto opt = std::make_unique<Optim>(member_params, Opts(train.lr).weight_decay(train.weight_decay));
  set_learning_rate(*opt, stacked.param_groups().front().options().get_lr());
  for (std::size_t i = 0; i < stacked_params.size(); ++i) {
    const auto it = stacked.state().find(optimizer_state_key(stacked_params[i]));
    if (it == stacked.state().end()) continue;  // no step taken yet
    const auto& s = static_cast<const State&>(*it->second);
    auto state = std::make_unique<State>();
    state->step(s.step());
    state->exp_avg(s.exp_avg()[k].clone());
    state->exp_avg_sq(s.exp_avg_sq()[k].clone());
    if (s.max_exp_avg_sq().defined()) state->max_exp_avg_sq(s.max_exp_avg_sq()[k].clone());
    opt->state()[optimizer_state_key(member_params[i])] = std::move(state);
  }
  return opt;
}

// Per-member global norm clipping (clip_grad_norm_on_device for each slice), on the device.
void clip_per_member(const std::vector<torch::Tensor>& params, std::int64_t k, double max_norm) {
  std::vector<torch::Tensor> squares;
  for (const auto& p : params) squares.push_back(p.grad().reshape({k, -1}).square().sum(1));
  const auto total = torch::stack(squares).sum(0).sqrt();  // [K]
  const auto scale = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  for (const auto& p : params) {
    std::vector<std::int64_t> shape(p.dim(), 1);
    shape[0] = k;
    p.grad().mul_(scale.view(shape));
  }
}

void train_group(std::vector<Member>& members, RunStore& store) {
  const auto& first = *members.front().run;
  const auto& train = first.train;
  const auto device = resolve_device(first.device);
  const auto k = static_cast<std::int64_t>(members.size());
  std::vector<Denoiser*> models;
  for (auto& m : members) models.push_back(m.model.get());
  const auto batched = members.front().model->make_batched(models);
  if (batched->size() != k) {
    throw RunError("model '" + first.model.plugin + "': its batched form holds " +
                   std::to_string(batched->size()) + " models, not " + std::to_string(k));
  }
  auto optimizer = make_optimizer(train, batched->parameters());

  const TrainingLength length(train, members.front().train_x.size(0));  // as each run alone
  const auto& [n, batch, steps_per_epoch, total_steps, total_epochs] = length;
  const bool scheduled_lr = train.warmup_steps > 0 || train.lr_schedule != "constant";
  const auto index_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  std::string label;
  for (const auto& m : members) label += (label.empty() ? "" : ", ") + std::to_string(m.run->index);

  std::int64_t global_step = 0;
  double train_seconds = 0;
  // One step of all members, graph-safe (cuda_graphs.hpp): it reads the batches from `x0`, draws
  // from the members' generators and updates with DeviceAdam, so on CUDA it is captured once
  // and replayed; on the CPU it runs as written.
  DeviceAdam adam(*optimizer);
  const auto params = batched->parameters();
  std::vector<torch::Generator> generators;
  for (auto& m : members) generators.push_back(m.generator);
  auto x0_shape = members.front().train_x.sizes().vec();
  x0_shape[0] = batch;
  x0_shape.insert(x0_shape.begin(), k);
  auto x0 = torch::empty(x0_shape, members.front().train_x.options());
  torch::Tensor step_losses;
  ReplayedWork step([&] {
    std::vector<torch::Tensor> x_t(k), t(k), noise(k);
    for (std::int64_t i = 0; i < k; ++i) {  // each member's draws, in TrainStep's order
      auto& m = members[i];
      t[i] = torch::randint(0, m.process->timesteps(), {batch}, m.generator, index_options);
      noise[i] = torch::randn(x0[i].sizes(), m.generator, x0.options());
      x_t[i] = m.process->q_sample(x0[i], t[i], noise[i]);
    }
    for (const auto& p : params) p.mutable_grad().reset();
    const auto output = batched->forward(torch::stack(x_t), torch::stack(t).to(torch::kFloat32));
    // Each member's mean squared error; their sum gives each member its own gradient.
    const auto losses = (output - torch::stack(noise)).square().flatten(1).mean(1);
    losses.sum().backward();
    if (train.grad_clip > 0) clip_per_member(params, k, train.grad_clip);
    adam.step();
    step_losses = losses.detach();
  });
  std::vector<torch::Tensor> orders(k);
  for (std::int64_t epoch = 1; epoch <= total_epochs; ++epoch) {
    const auto start = Clock::now();
    for (std::int64_t i = 0; i < k; ++i) orders[i] = torch::randperm(n, members[i].generator, index_options);
    auto loss_sum = torch::zeros({k}, members.front().train_x.options());
    std::int64_t steps_this_epoch = 0;
    for (std::int64_t b = 0; b < steps_per_epoch && global_step < total_steps; ++b) {
      if (scheduled_lr) set_learning_rate(*optimizer, learning_rate(train, global_step, total_steps));
      for (std::int64_t i = 0; i < k; ++i) {
        x0[i].copy_(members[i].train_x.index_select(0, orders[i].slice(0, b * batch, (b + 1) * batch)));
      }
      adam.sync_learning_rate();
      step(generators, device);
      adam.count_step();
      loss_sum += step_losses;
      ++global_step;
      ++steps_this_epoch;
      crash_point("train-step");
    }
    const auto epoch_losses = (loss_sum.to(torch::kCPU, torch::kFloat64) / double(std::max<std::int64_t>(1, steps_this_epoch)));
    train_seconds += seconds_since(start);
    for (std::int64_t i = 0; i < k; ++i) {
      const double loss = epoch_losses[i].item<double>();
      if (!std::isfinite(loss)) {
        throw RunError("run " + std::to_string(members[i].run->index) + ": the training loss became non-finite at epoch " +
                       std::to_string(epoch));
      }
      members[i].pending_losses.push_back({global_step, epoch, loss, ""});
    }
    if (epoch % train.checkpoint_every != 0 && epoch != total_epochs) continue;

    for (std::int64_t i = 0; i < k; ++i) {
      auto& m = members[i];
      batched->unstack_into(i, *m.model);
      const auto member_params = m.model->parameters();
      auto opt = train.optimizer == "adamw"
                     ? member_optimizer<torch::optim::AdamW, torch::optim::AdamWParamState, torch::optim::AdamWOptions>(
                           train, *optimizer, params, member_params, i)
                     : member_optimizer<torch::optim::Adam, torch::optim::AdamParamState, torch::optim::AdamOptions>(
                           train, *optimizer, params, member_params, i);
      const auto dir = m.run_dir / fmt::format("epoch-{:06d}", epoch);
      fs::create_directories(dir);
      const auto file = (dir / "checkpoint.pt").string();
      save_checkpoint(file, *m.model, *opt, m.generator, {epoch, global_step});
      CheckpointRecord record{0, m.run_id, epoch, global_step, file, train_seconds, "model", global_step * batch};
      crash_point("checkpoint-record");
      store.transaction([&] {
        store.add_losses(m.run_id, m.pending_losses);
        store.add_checkpoint(record);
      });
      m.pending_losses.clear();
    }
    spdlog::info("batched runs {}: epoch {}/{} step {} ({:.0f} steps/s for {} models)", label, epoch,
                 total_epochs, global_step, global_step / std::max(1e-9, train_seconds), k);
  }
}

}  // namespace

std::int64_t train_batched_groups(const SweepGrid& grid, RunStore& store, const Registry& registry,
                                  std::int64_t sweep_id, const SweepOptions& options) {
  std::map<std::string, std::vector<std::pair<const RunConfig*, std::int64_t>>> groups;
  std::map<std::string, bool> hashes;  // one training per train_hash; the others reuse it
  std::map<std::string, std::string> obstacles;  // by batch_key: asked once per model and train
  for (const auto& run : grid.runs) {
    const auto record = store.find_run(sweep_id, run.config_hash);
    if (!record) continue;
    const bool startable = record->status == RunStatus::pending ||
                           (record->status == RunStatus::failed && options.retry_failed);
    if (!startable || !store.checkpoints(record->id).empty() || hashes[run.train_hash]) continue;
    if (store.find_trained(run.train_hash)) continue;  // reused, not trained
    const auto key = batch_key(run);
    if (!obstacles.count(key)) obstacles[key] = batching_obstacle(run, registry);
    if (const auto& why = obstacles[key]; !why.empty()) {
      spdlog::debug("run {} trains alone: {}", run.index, why);
      continue;
    }
    hashes[run.train_hash] = true;
    groups[key].push_back({&run, record->id});
  }
  std::int64_t trained = 0;
  for (auto& [key, runs] : groups) {
    if (runs.size() < 2) continue;
    std::vector<Member> members;
    try {
      for (const auto& [run, run_id] : runs) {
        Member m;
        m.run = run;
        m.run_id = run_id;
        const auto device = resolve_device(run->device);
        const auto dataset = registry.make_dataset(run->dataset.plugin, run->dataset.options);
        torch::manual_seed(derive_seed(run->seed, "model-init"));  // as the engine: same initial weights
        m.model = registry.make_model(run->model.plugin, run->model.options);
        m.model->to(device);
        m.model->train();
        m.train_x = dataset->load(Split::train, derive_seed(run->seed, "data")).x.to(device);
        m.process = std::make_unique<DiffusionProcess>(schedule_betas(registry, run->schedule), device);
        m.generator = make_generator(device, derive_seed(run->seed, "train"));
        m.run_dir = options.engine.out_dir / run->sweep / run->train_hash;
        store.mark_running(run_id, device.str(), ::getpid());
        members.push_back(std::move(m));
      }
      spdlog::info("training {} runs as one batched model", members.size());
      train_group(members, store);
      trained += static_cast<std::int64_t>(members.size());
    } catch (const std::exception& e) {
      spdlog::warn("batched training stopped ({}); its runs go on separately from their last checkpoints", e.what());
    }
  }
  return trained;
}

}  // namespace difflab
