#include <nlohmann/json.hpp>

#include "engine/run_context.hpp"
#include "engine/training_task.hpp"
#include "training/train_step.hpp"

namespace difflab {

AutoencoderTask::AutoencoderTask(RunContext& ctx)
    : ctx_(ctx), kl_weight_(ctx.run.autoencoder.options.real("kl_weight")) {}

const DataSplit& AutoencoderTask::training_data() const { return ctx_.train; }

std::vector<torch::Tensor> AutoencoderTask::parameters() { return ctx_.autoencoder->parameters(); }

void AutoencoderTask::prepare(torch::optim::Optimizer& optimizer, const std::string& /*tag*/) {
  ctx_.autoencoder->train();
  optimizer_ = &optimizer;
}

torch::Tensor AutoencoderTask::step(const torch::Tensor& x, const torch::Tensor& /*labels*/,
                                    torch::Generator& generator) {
  auto& autoencoder = *ctx_.autoencoder;
  const auto q = autoencoder.encode(x);
  const auto reconstruction = torch::mse_loss(autoencoder.decode(sample_latent(q, generator)), x);
  const auto kl = gaussian_kl(q).mean();
  const auto loss = reconstruction + kl_weight_ * kl;
  optimizer_->zero_grad();
  loss.backward();
  if (ctx_.run.train.grad_clip > 0) clip_grad_norm_on_device(parameters(), ctx_.run.train.grad_clip);
  optimizer_->step();
  reconstruction_sum_ = reconstruction_sum_.defined() ? reconstruction_sum_ + reconstruction.detach()
                                                      : reconstruction.detach();
  kl_sum_ = kl_sum_.defined() ? kl_sum_ + kl.detach() : kl.detach();
  ++steps_;
  return loss.detach();
}

std::string AutoencoderTask::take_loss_terms() {
  if (steps_ == 0) return "";
  const nlohmann::json terms = {{"reconstruction", reconstruction_sum_.item<double>() / steps_},
                                {"kl", kl_sum_.item<double>() / steps_}};
  reconstruction_sum_ = kl_sum_ = torch::Tensor();
  steps_ = 0;
  return terms.dump();
}

void AutoencoderTask::save(const std::string& file, torch::optim::Optimizer& optimizer,
                           const torch::Generator& generator, CheckpointPosition position) {
  save_checkpoint(file, *ctx_.autoencoder, optimizer, generator, position);
}

CheckpointPosition AutoencoderTask::load(const std::string& file, torch::optim::Optimizer* optimizer,
                                         torch::Generator* generator) {
  return load_checkpoint(file, *ctx_.autoencoder, optimizer, generator, ctx_.device).position;
}

}  // namespace difflab
