#include "engine/training_task.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "accel/cuda_graphs.hpp"
#include "engine/class_table.hpp"
#include "engine/run_context.hpp"
#include "training/train_step.hpp"

namespace difflab {
namespace {

// The class labels training and evaluation give the model must index its class table: checked
// here, once, outside any capture (on CUDA an out-of-range label is a device-side assert).
void check_labels(const RunContext& ctx) {
  const auto& labels = ctx.train.labels;
  std::int64_t needed = ctx.dataset->num_classes();  // evaluation's labels are 0..K-1
  if (labels.defined() && labels.numel() > 0) needed = std::max(needed, labels.max().item<std::int64_t>() + 1);
  check_class_table(ctx.run, needed);
}

}  // namespace

DenoisingTask::DenoisingTask(RunContext& ctx) : ctx_(ctx) {}

const DataSplit& DenoisingTask::training_data() const { return ctx_.train; }

std::vector<torch::Tensor> DenoisingTask::parameters() { return ctx_.model->parameters(); }

void DenoisingTask::prepare(torch::optim::Optimizer& optimizer, const std::string& tag) {
  const auto& train = ctx_.run.train;
  check_labels(ctx_);
  ctx_.model->train();
  // On CUDA the step is captured in a CUDA graph (cuda_graphs.hpp); elsewhere it runs eagerly,
  // and so does a step whose capture fails (it warns once).
  const LossSettings loss{train.label_dropout, train.loss_weighting == "min_snr" ? train.min_snr_gamma : 0.0};
  step_ = TrainStep(*ctx_.model, *ctx_.process, optimizer, train.grad_clip, loss);
  if (captures_training_steps(ctx_.device) && DeviceAdam::supports(optimizer)) {
    try {
      step_ = [graphed = std::make_shared<GraphedTrainStep>(*ctx_.model, *ctx_.process, optimizer,
                                                            train.grad_clip, loss)](
                  const torch::Tensor& x0, const torch::Tensor& labels, torch::Generator& g) {
        return (*graphed)(x0, labels, g);
      };
    } catch (const std::invalid_argument& e) {  // a resumed optimizer it cannot take over
      spdlog::warn("{}: training without CUDA graphs: {}", tag, e.what());
    }
  }
}

torch::Tensor DenoisingTask::step(const torch::Tensor& x, const torch::Tensor& labels,
                                  torch::Generator& generator) {
  return step_(x, labels, generator);
}

void DenoisingTask::after_step() {
  if (ctx_.ema) ctx_.ema->update();
}

void DenoisingTask::save(const std::string& file, torch::optim::Optimizer& optimizer,
                         const torch::Generator& generator, CheckpointPosition position) {
  save_checkpoint(file, *ctx_.model, optimizer, generator, position, ctx_.ema ? &ctx_.ema->weights() : nullptr);
}

CheckpointPosition DenoisingTask::load(const std::string& file, torch::optim::Optimizer* optimizer,
                                       torch::Generator* generator) {
  const auto loaded = load_checkpoint(file, *ctx_.model, optimizer, generator, ctx_.device,
                                      ctx_.ema ? &ctx_.ema->weights() : nullptr);
  if (ctx_.ema && !loaded.has_ema) ctx_.ema->reset();  // written without one: start it here
  return loaded.position;
}

std::string DenoisingTask::evaluated_name() const { return ctx_.evaluated_name(); }

}  // namespace difflab
