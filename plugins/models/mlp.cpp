// mlp: a multilayer perceptron denoiser with a sinusoidal time embedding, for low-dimensional data.
#include <cmath>
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
    auto h = linear(x, input_) + linear(torch::silu(linear(time_features(t), time_in_)), time_out_);
    if (num_classes_ > 0) h = h + labels_(class_indices(cond, x));
    for (auto& layer : plain_layers_) h = torch::silu(linear(h, layer));
    for (auto& block : residual_blocks_) h = block(h);
    return linear(h, output_).view(x_t.sizes());
  }

  Prediction prediction() const override { return prediction_; }

 private:
  torch::Tensor time_features(const torch::Tensor& t) const { return timestep_embedding(t, embedding_dim_); }

  // Labels as embedding rows; undefined or negative labels select the extra "no label" row.
  torch::Tensor class_indices(const Conditioning& cond, const torch::Tensor& x) const {
    const auto options = x.options().dtype(torch::kLong);
    if (!cond.labels.defined()) return torch::full({x.size(0)}, num_classes_, options);
    const auto labels = cond.labels.to(options);
    if (labels.numel() > 0 && labels.max().item<std::int64_t>() >= num_classes_) {
      throw InputError("model 'mlp': class label " +
                       std::to_string(labels.max().item<std::int64_t>()) +
                       " is out of range for num_classes = " + std::to_string(num_classes_));
    }
    return torch::where(labels < 0, torch::full_like(labels, num_classes_), labels);
  }

  std::int64_t data_dim_, embedding_dim_, num_classes_;
  Prediction prediction_;
  torch::nn::Linear input_{nullptr}, time_in_{nullptr}, time_out_{nullptr}, output_{nullptr};
  torch::nn::Embedding labels_{nullptr};
  std::vector<torch::nn::Linear> plain_layers_;
  std::vector<ResidualBlock> residual_blocks_;
};

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
