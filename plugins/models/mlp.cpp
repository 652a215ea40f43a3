// mlp: a multilayer perceptron denoiser with a sinusoidal time embedding, for low-dimensional data.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "difflab/errors.hpp"
#include "difflab/linear.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

// h + W2 SiLU(W1 h): the skip path keeps deep stacks trainable.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualBlockImpl(std::int64_t width)
      : fc1_(register_module("fc1", torch::nn::Linear(width, width))),
        fc2_(register_module("fc2", torch::nn::Linear(width, width))) {}

  torch::Tensor forward(const torch::Tensor& h) {
    return h + linear(torch::silu(linear(h, fc1_)), fc2_);
  }

 private:
  torch::nn::Linear fc1_, fc2_;
};
TORCH_MODULE(ResidualBlock);

class MlpDenoiser final : public Denoiser {
 public:
  explicit MlpDenoiser(const Options& o)
      : data_dim_(o.integer("data_dim")), embedding_dim_(o.integer("time_embedding")),
        num_classes_(o.integer("num_classes")),
        prediction_(parse_prediction(o.text("prediction"))) {
    if (embedding_dim_ % 2 != 0) {
      throw InputError("model 'mlp': time_embedding must be even (sine and cosine halves), got " +
                       std::to_string(embedding_dim_));
    }
    const std::int64_t hidden = o.integer("hidden");
    input_ = register_module("input", torch::nn::Linear(data_dim_, hidden));
    time_in_ = register_module("time_in", torch::nn::Linear(embedding_dim_, hidden));
    time_out_ = register_module("time_out", torch::nn::Linear(hidden, hidden));
    if (num_classes_ > 0) {
      // One row more than there are classes: the "no label" class of classifier-free guidance.
      labels_ = register_module("labels", torch::nn::Embedding(num_classes_ + 1, hidden));
    }
    for (std::int64_t i = 0; i < o.integer("layers"); ++i) {
      const auto name = "block" + std::to_string(i);
      if (o.boolean("residual")) {
        residual_blocks_.push_back(register_module(name, ResidualBlock(hidden)));
      } else {
        plain_layers_.push_back(register_module(name, torch::nn::Linear(hidden, hidden)));
      }
    }
    output_ = register_module("output", torch::nn::Linear(hidden, data_dim_));
  }

  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t,
                        const Conditioning& cond) override {
    if (x_t.dim() < 2 || x_t.flatten(1).size(1) != data_dim_) {
      throw InputError("model 'mlp': expected a batch of samples with data_dim = " +
                       std::to_string(data_dim_) + " features each, got shape " +
                       c10::str(x_t.sizes()) + "; set the model's data_dim to the dataset's");
    }
    const auto x = x_t.flatten(1);
    // The time branch once per distinct timestep: a sampler's step gives every row the same t as
    // a stride-0 view (timestep_batch), so its one row is computed and broadcast over the batch.
    const bool one_timestep = t.dim() == 1 && t.size(0) > 1 && t.stride(0) == 0;
    const auto time = one_timestep ? t.slice(0, 0, 1) : t;
    auto h = linear(x, input_) + linear(torch::silu(linear(time_features(time), time_in_)), time_out_);
    if (num_classes_ > 0) h = h + label_embedding(cond, x);
    for (auto& layer : plain_layers_) h = torch::silu(linear(h, layer));
    for (auto& block : residual_blocks_) h = block(h);
    return linear(h, output_).view(x_t.sizes());
  }

  Prediction prediction() const override { return prediction_; }

  std::string batching_obstacle() const override {
    if (!residual_blocks_.empty()) return "with residual blocks has no batched form";
    if (num_classes_ > 0) return "with class labels (num_classes > 0) has no batched form";
    if (prediction_ != Prediction::epsilon) {
      return "with " + std::string(prediction_name(prediction_)) +
             " prediction has no batched form (only epsilon prediction is batched)";
    }
    return "";
  }

  std::unique_ptr<BatchedDenoiser> make_batched(
      const std::vector<Denoiser*>& members) const override;

 private:
  torch::Tensor time_features(const torch::Tensor& t) const { return timestep_embedding(t, embedding_dim_); }

  // Labels as embedding rows: undefined or negative labels select the extra "no label" row, labels
  // >= num_classes a row past the table, which the lookup refuses. No label is read back to the
  // host (a CUDA graph capture forbids it; the engine checks the data's labels before training).
  torch::Tensor label_embedding(const Conditioning& cond, const torch::Tensor& x) {
    const auto options = x.options().dtype(torch::kLong);
    if (!cond.labels.defined()) return labels_(torch::full({x.size(0)}, num_classes_, options));
    const auto labels = cond.labels.to(options);
    const auto rows = labels.masked_fill(labels >= num_classes_, num_classes_ + 1)
                          .masked_fill(labels < 0, num_classes_);
    try {
      return labels_(rows);
    } catch (const c10::IndexError&) {  // on the CPU; on CUDA a device-side assert
      throw InputError("model 'mlp': a class label is out of range for num_classes = " +
                       std::to_string(num_classes_) + " (labels are 0.." +
                       std::to_string(num_classes_ - 1) + ", or -1 for none)");
    }
  }

  std::int64_t data_dim_, embedding_dim_, num_classes_;
  Prediction prediction_;
  torch::nn::Linear input_{nullptr}, time_in_{nullptr}, time_out_{nullptr}, output_{nullptr};
  torch::nn::Embedding labels_{nullptr};
  std::vector<torch::nn::Linear> plain_layers_;
  std::vector<ResidualBlock> residual_blocks_;
};

// K plain MLPs (no residual blocks, no classes) as one: each parameter stacked along a new first
// dimension [K, ...] in the members' parameters() order, each layer one batched_linear.
class BatchedMlp final : public BatchedDenoiser {
 public:
  BatchedMlp(const std::vector<const MlpDenoiser*>& members, std::int64_t embedding_dim)
      : members_(static_cast<std::int64_t>(members.size())), embedding_dim_(embedding_dim) {
    for (const auto& p : members.front()->named_parameters()) names_.push_back(p.key());
    while (index_of("block" + std::to_string(layers_) + ".weight") < names_.size()) ++layers_;
    torch::NoGradGuard no_grad;
    const auto first = members.front()->parameters();
    std::vector<std::vector<torch::Tensor>> slices(first.size());
    for (const auto* m : members) {
      const auto params = m->parameters();
      for (std::size_t i = 0; i < first.size(); ++i) {
        if (params.size() != first.size() || !params[i].sizes().equals(first[i].sizes())) {
          throw RunError("model 'mlp': the batch's members differ in data_dim, hidden or layers; "
                         "a batch stacks models of one config");
        }
        slices[i].push_back(params[i].detach());
      }
    }
    for (auto& s : slices) stacked_.push_back(torch::stack(s).set_requires_grad(true));
  }

  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t) override {
    const auto k = x_t.size(0), b = x_t.size(1);
    const auto x = x_t.flatten(2);
    const auto embedding = timestep_embedding(t.reshape({-1}), embedding_dim_).view({k, b, -1});
    // MlpDenoiser::forward per member: input(x) + time_out(SiLU(time_in(emb(t)))), SiLU layers.
    auto h = layer("input", x) + layer("time_out", torch::silu(layer("time_in", embedding)));
    for (std::int64_t i = 0; i < layers_; ++i) {
      h = torch::silu(layer("block" + std::to_string(i), h));
    }
    return layer("output", h).reshape(x_t.sizes());
  }

  std::vector<torch::Tensor> parameters() const override { return stacked_; }

  void unstack_into(std::int64_t k, Denoiser& member) const override {
    torch::NoGradGuard no_grad;
    auto params = member.named_parameters();
    for (std::size_t i = 0; i < names_.size(); ++i) params[names_[i]].copy_(stacked_[i][k]);
  }

  std::int64_t size() const override { return members_; }

 private:
  std::size_t index_of(const std::string& name) const {
    return std::find(names_.begin(), names_.end(), name) - names_.begin();
  }

  // y = b + x W^T per member (difflab::batched_linear: oneDNN products on the CPU, else baddbmm).
  torch::Tensor layer(const std::string& name, const torch::Tensor& x) const {
    return batched_linear(x, stacked_[index_of(name + ".weight")],
                          stacked_[index_of(name + ".bias")]);
  }

  std::int64_t members_, embedding_dim_, layers_ = 0;
  std::vector<std::string> names_;      // the members' parameter names, in parameters() order
  std::vector<torch::Tensor> stacked_;  // [K, ...] leaves, in names_ order
};

std::unique_ptr<BatchedDenoiser> MlpDenoiser::make_batched(
    const std::vector<Denoiser*>& members) const {
  if (members.empty()) throw RunError("model 'mlp': a batch needs at least one model");
  std::vector<const MlpDenoiser*> mlps;
  for (const auto* m : members) {
    const auto* mlp = dynamic_cast<const MlpDenoiser*>(m);
    if (mlp == nullptr) throw RunError("model 'mlp': a batch of mlp models holds another model");
    if (const auto why = mlp->batching_obstacle(); !why.empty()) throw RunError("mlp " + why);
    if (mlp->embedding_dim_ != embedding_dim_) {
      throw RunError("model 'mlp': the batch's members differ in time_embedding");
    }
    mlps.push_back(mlp);
  }
  return std::make_unique<BatchedMlp>(mlps, embedding_dim_);
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_model(
      {"mlp", "1.0.0", "MLP denoiser with a sinusoidal time embedding, plain or residual",
       {OptionSpec::integer("data_dim", 2, "features per sample (2D toy data: 2; images flatten)")
            .at_least(1),
        OptionSpec::integer("hidden", 256, "width of every hidden layer (units)").at_least(1),
        OptionSpec::integer("layers", 3, "hidden layers, or residual blocks when residual")
            .at_least(1),
        OptionSpec::integer("time_embedding", 128, "size of the sinusoidal time embedding (even)")
            .at_least(2),
        OptionSpec::boolean("residual", false,
                            "false: Linear+SiLU layers; true: blocks h + Linear(SiLU(Linear(h)))"),
        OptionSpec::text("prediction", "epsilon", "what the network outputs: epsilon, x0 or v",
                         {"epsilon", "x0", "v"}),
        OptionSpec::integer("num_classes", 0,
                            "class labels for conditioning; 0 is unconditional (labels ignored)")
            .at_least(0)}},
      [](const Options& o) { return std::make_unique<MlpDenoiser>(o); });
}
