// unet: UNet-mini for images (Ho et al. 2020, appendix B; Nichol & Dhariwal 2021): residual blocks
// with GroupNorm and a time embedding, optional self-attention and class labels, skip
// concatenations.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                       std::int64_t stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

torch::nn::GroupNorm group_norm(std::int64_t groups, std::int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels));
}

// x + F(x, e), F = conv(dropout(SiLU(GN(conv(SiLU(GN(x))) + Linear(SiLU(e)))))); a 1x1 conv
// carries x across when the channel count changes.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(std::int64_t in, std::int64_t out, std::int64_t embedding, std::int64_t groups,
                    double dropout)
      : norm1_(register_module("norm1", group_norm(groups, in))),
        conv1_(register_module("conv1", conv(in, out, 3))),
        time_(register_module("time", torch::nn::Linear(embedding, out))),
        norm2_(register_module("norm2", group_norm(groups, out))),
        dropout_(register_module("dropout", torch::nn::Dropout(dropout))),
        conv2_(register_module("conv2", conv(out, out, 3))) {
    if (in != out) skip_ = register_module("skip", conv(in, out, 1));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& embedding) {
    auto h = conv1_(torch::silu(norm1_(x)));
    h = h + time_(torch::silu(embedding)).unsqueeze(-1).unsqueeze(-1);
    h = conv2_(dropout_(torch::silu(norm2_(h))));
    return (skip_.is_empty() ? x : skip_(x)) + h;
  }

 private:
  torch::nn::GroupNorm norm1_;
  torch::nn::Conv2d conv1_;
  torch::nn::Linear time_;
  torch::nn::GroupNorm norm2_;
  torch::nn::Dropout dropout_;
  torch::nn::Conv2d conv2_, skip_{nullptr};
};
TORCH_MODULE(ResidualBlock);

// x + proj(MultiHead(GN(x))) over the H*W positions; softmax(q^T k / sqrt(d)) v per head
// (Vaswani et al. 2017, eq. 1).
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(std::int64_t channels, std::int64_t heads, std::int64_t groups)
      : heads_(heads),
        norm_(register_module("norm", group_norm(groups, channels))),
        qkv_(register_module("qkv", conv(channels, 3 * channels, 1))),
        proj_(register_module("proj", conv(channels, channels, 1))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), d = c / heads_;
    // [B * heads, 3 d, HW]: each head's q, k and v channels side by side.
    const auto qkv = qkv_(norm_(x)).reshape({b * heads_, 3 * d, -1});
    // Scaling q (d x HW) rather than the HW x HW scores saves a pass over the largest tensor.
    const auto q = qkv.narrow(1, 0, d) / std::sqrt(double(d));
    const auto k = qkv.narrow(1, d, d), v = qkv.narrow(1, 2 * d, d);
    const auto weights = torch::softmax(torch::bmm(q.transpose(1, 2), k), -1);  // [B h, HW, HW]
    const auto attended = torch::bmm(v, weights.transpose(1, 2));  // [B * heads, d, HW]
    return x + proj_(attended.reshape(x.sizes()));
  }

 private:
  std::int64_t heads_;
  torch::nn::GroupNorm norm_;
  torch::nn::Conv2d qkv_, proj_;
};
TORCH_MODULE(SelfAttention);

// One residual block, followed by self-attention at the chosen resolutions.
struct Stage {
  ResidualBlock block{nullptr};
  SelfAttention attention{nullptr};

  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& embedding) {
    const auto out = block(h, embedding);
    return attention.is_empty() ? out : attention(out);
  }
};

// One resolution of the down or up path; `resample` is the strided 3x3 conv that halves the
// resolution (down) or the 3x3 conv after a nearest 2x upsampling (up); none at the ends.
struct Level {
  std::vector<Stage> stages;
  torch::nn::Conv2d resample{nullptr};
};

class UNetDenoiser final : public Denoiser {
 public:
  explicit UNetDenoiser(const Options& o)
      : in_channels_(o.integer("in_channels")),
        base_(o.integer("base_channels")),
        image_size_(o.integer("image_size")),
        groups_(o.integer("groups")),
        heads_(o.integer("attention_heads")),
        num_classes_(o.integer("num_classes")),
        dropout_(o.real("dropout")),
        label_dropout_(o.real("label_dropout")),
        prediction_(parse_prediction(o.text("prediction"))) {
    const auto& mult = o.integer_list("channel_mult");
    const auto& attention = o.integer_list("attention_resolutions");
    check_options(mult, attention);
    const std::int64_t levels = mult.size(), blocks = o.integer("blocks_per_level");
    const auto has_attention = [&](std::int64_t resolution) {
      return std::find(attention.begin(), attention.end(), resolution) != attention.end();
    };

    const std::int64_t embedding = 4 * base_;
    time_in_ = register_module("time_in", torch::nn::Linear(2 * (base_ / 2), embedding));
    time_out_ = register_module("time_out", torch::nn::Linear(embedding, embedding));
    if (num_classes_ > 0) {
      // One row more than there are classes: the "no label" class of classifier-free guidance.
      labels_ = register_module("labels", torch::nn::Embedding(num_classes_ + 1, embedding));
    }
    input_ = register_module("input", conv(in_channels_, base_, 3));

    // Down: every stage's output (and the input conv's, and each downsampling's) is a skip.
    std::vector<std::int64_t> skips{base_};
    std::int64_t channels = base_, resolution = image_size_;
    for (std::int64_t i = 0; i < levels; ++i) {
      Level level;
      for (std::int64_t j = 0; j < blocks; ++j) {
        const auto name = "down" + std::to_string(i) + "_" + std::to_string(j);
        level.stages.push_back(
            make_stage(name, channels, base_ * mult[i], embedding, has_attention(resolution)));
        channels = base_ * mult[i];
        skips.push_back(channels);
      }
      if (i + 1 < levels) {
        level.resample = register_module("down" + std::to_string(i) + "_resample",
                                         conv(channels, channels, 3, 2));
        skips.push_back(channels);
        resolution /= 2;
      }
      down_.push_back(std::move(level));
    }

    // Middle: as in DDPM, attention between two blocks whenever the model has attention at all.
    middle_.push_back(make_stage("middle0", channels, channels, embedding, !attention.empty()));
    middle_.push_back(make_stage("middle1", channels, channels, embedding, false));

    // Up: one stage more per level than down, each concatenating one skip.
    for (std::int64_t i = levels - 1; i >= 0; --i) {
      Level level;
      for (std::int64_t j = 0; j <= blocks; ++j) {
        const auto name = "up" + std::to_string(i) + "_" + std::to_string(j);
        level.stages.push_back(make_stage(name, channels + skips.back(), base_ * mult[i], embedding,
                                          has_attention(resolution)));
        skips.pop_back();
        channels = base_ * mult[i];
      }
      if (i > 0) {
        level.resample =
            register_module("up" + std::to_string(i) + "_resample", conv(channels, channels, 3));
        resolution *= 2;
      }
      up_.push_back(std::move(level));
    }

    output_norm_ = register_module("output_norm", group_norm(groups_, channels));
    output_ = register_module("output", conv(channels, in_channels_, 3));
    // Zero-initialised as in improved DDPM: the untrained model outputs 0 (the mean of epsilon,
    // loss E[eps^2] = 1) instead of large random values, which keeps the first steps stable.
    torch::NoGradGuard no_grad;
    output_->weight.zero_();
    output_->bias.zero_();
  }

  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t,
                        const Conditioning& cond) override {
    if (x_t.dim() != 4 || x_t.size(1) != in_channels_ || x_t.size(2) != image_size_ ||
        x_t.size(3) != image_size_) {
      throw InputError("model 'unet': expected images [B, " + std::to_string(in_channels_) + ", " +
                       std::to_string(image_size_) + ", " + std::to_string(image_size_) +
                       "], got shape " + c10::str(x_t.sizes()) +
                       "; set the model's in_channels and image_size to the dataset's");
    }
    auto embedding = time_out_(torch::silu(time_in_(time_features(t))));
    if (num_classes_ > 0) embedding = embedding + label_embedding(cond, x_t);

    auto h = input_(x_t);
    std::vector<torch::Tensor> skips{h};
    for (auto& level : down_) {
      for (auto& stage : level.stages) {
        h = stage.forward(h, embedding);
        skips.push_back(h);
      }
      if (!level.resample.is_empty()) {
        h = level.resample(h);
        skips.push_back(h);
      }
    }
    for (auto& stage : middle_) h = stage.forward(h, embedding);
    for (auto& level : up_) {
      for (auto& stage : level.stages) {
        h = stage.forward(torch::cat({h, skips.back()}, 1), embedding);
        skips.pop_back();
      }
      if (!level.resample.is_empty()) {
        h = level.resample(torch::upsample_nearest2d(h, {2 * h.size(2), 2 * h.size(3)}));
      }
    }
    return output_(torch::silu(output_norm_(h)));
  }

  Prediction prediction() const override { return prediction_; }

 private:
  [[noreturn]] static void refuse(const std::string& what) {
    throw InputError("model 'unet': " + what);
  }

  void check_options(const std::vector<std::int64_t>& mult,
                     const std::vector<std::int64_t>& attention) const {
    if (mult.empty()) refuse("channel_mult must list at least one level, got []");
    // Every GroupNorm's channel count is a multiple of base_channels, and the first is
    // base_channels.
    if (base_ % groups_ != 0) {
      refuse("groups " + std::to_string(groups_) + " must divide base_channels " +
             std::to_string(base_) + " (every GroupNorm's channels are a multiple of it)");
    }
    const std::int64_t factor = std::int64_t{1} << (mult.size() - 1);
    if (image_size_ % factor != 0) {
      refuse("image_size " + std::to_string(image_size_) +
             " must be divisible by 2^(levels - 1) = " + std::to_string(factor) +
             " (channel_mult has " + std::to_string(mult.size()) + " levels)");
    }
    for (const auto resolution : attention) {
      std::int64_t level = 0;
      while (level < std::int64_t(mult.size()) && image_size_ >> level != resolution) ++level;
      if (level == std::int64_t(mult.size())) {
        refuse("attention_resolutions: " + std::to_string(resolution) +
               " is not a resolution of the network (image_size " + std::to_string(image_size_) +
               " halved at each of the " + std::to_string(mult.size()) + " levels)");
      }
      const auto channels = base_ * mult[level];
      if (channels % heads_ != 0) {
        refuse("attention_heads " + std::to_string(heads_) + " must divide the " +
               std::to_string(channels) + " channels at resolution " + std::to_string(resolution));
      }
    }
    // The middle block's attention works on the last level's channels.
    if (!attention.empty() && base_ * mult.back() % heads_ != 0) {
      refuse("attention_heads " + std::to_string(heads_) + " must divide the " +
             std::to_string(base_ * mult.back()) + " channels of the middle block");
    }
  }

  Stage make_stage(const std::string& name, std::int64_t in, std::int64_t out,
                   std::int64_t embedding, bool attention) {
    Stage stage;
    stage.block = register_module(name, ResidualBlock(in, out, embedding, groups_, dropout_));
    if (attention) {
      stage.attention = register_module(name + "_attention", SelfAttention(out, heads_, groups_));
    }
    return stage;
  }

  torch::Tensor time_features(const torch::Tensor& t) const { return timestep_embedding(t, base_); }

  // Labels as embedding rows: undefined or negative labels select the extra "no label" row, and in
  // training each label becomes "no label" with probability label_dropout (Ho & Salimans 2022);
  // labels >= num_classes select a row past the table, which the lookup refuses. No label is read
  // back to the host (a CUDA graph capture forbids it; the engine checks the data's labels).
  torch::Tensor label_embedding(const Conditioning& cond, const torch::Tensor& x) {
    const auto options = x.options().dtype(torch::kLong);
    if (!cond.labels.defined()) return labels_(torch::full({x.size(0)}, num_classes_, options));
    const auto labels = cond.labels.to(options);
    auto none = labels < 0;
    if (is_training() && label_dropout_ > 0) {  // an out-of-range label stays refused
      const auto drop = torch::rand({x.size(0)}, x.options()) < label_dropout_;
      none = none | (drop & (labels < num_classes_));
    }
    const auto rows = labels.masked_fill(labels >= num_classes_, num_classes_ + 1)
                          .masked_fill(none, num_classes_);
    try {
      return labels_(rows);
    } catch (const c10::IndexError&) {  // on the CPU; on CUDA a device-side assert
      refuse("a class label is out of range for num_classes = " + std::to_string(num_classes_) +
             " (labels are 0.." + std::to_string(num_classes_ - 1) + ", or -1 for none)");
    }
  }

  std::int64_t in_channels_, base_, image_size_, groups_, heads_, num_classes_;
  double dropout_, label_dropout_;
  Prediction prediction_;
  torch::nn::Linear time_in_{nullptr}, time_out_{nullptr};
  torch::nn::Embedding labels_{nullptr};
  torch::nn::Conv2d input_{nullptr}, output_{nullptr};
  torch::nn::GroupNorm output_norm_{nullptr};
  std::vector<Level> down_, up_;
  std::vector<Stage> middle_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_model(
      {"unet",
       "1.0.0",
       "UNet-mini: residual blocks with GroupNorm and a sinusoidal time embedding, optional "
       "self-attention and class labels",
       {OptionSpec::integer("in_channels", 1, "image channels (1: MNIST, Fashion-MNIST)")
            .at_least(1),
        OptionSpec::integer("image_size", 32, "image side in pixels; divisible by 2^(levels - 1)")
            .at_least(1),
        OptionSpec::integer("base_channels", 64,
                            "channels of the first level; the time embedding has 4x as many")
            .at_least(2),
        OptionSpec::integer_list("channel_mult", {1, 2, 2},
                                 "channels of each level as multiples of base_channels; the "
                                 "resolution halves from one level to the next")
            .at_least(1),
        OptionSpec::integer("blocks_per_level", 2,
                            "residual blocks per level on the way down (one more on the way up)")
            .at_least(1),
        OptionSpec::integer_list("attention_resolutions", {16},
                                 "resolutions (pixels) with self-attention after each block, and "
                                 "then in the middle block too; [] = no attention")
            .at_least(1),
        OptionSpec::integer("attention_heads", 1,
                            "heads of each self-attention (DDPM: 1; each head adds an HW x HW "
                            "score matrix per image)")
            .at_least(1),
        OptionSpec::integer("groups", 8, "GroupNorm groups; must divide base_channels").at_least(1),
        OptionSpec::real(
            "dropout", 0.0,
            "dropout in each residual block while training (DDPM: 0.1; draws from "
            "torch's global generator, so a resumed run no longer repeats bit for bit)")
            .at_least(0)
            .less_than(1),
        OptionSpec::text("prediction", "epsilon", "what the network outputs: epsilon, x0 or v",
                         {"epsilon", "x0", "v"}),
        OptionSpec::integer("num_classes", 0,
                            "class labels for conditioning; 0 is unconditional (labels ignored)")
            .at_least(0),
        OptionSpec::real("label_dropout", 0.0,
                         "probability that training replaces a label by \"no label\", drawn from "
                         "torch's global generator; train.label_dropout does the same for any model "
                         "from the run's generator, so a resumed run repeats an uninterrupted one")
            .at_least(0)
            .at_most(1)}},
      [](const Options& o) { return std::make_unique<UNetDenoiser>(o); });
}
