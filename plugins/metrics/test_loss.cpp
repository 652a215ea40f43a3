// test_loss: the denoising loss of the model on held-out data, in its own prediction space; a
// class-conditional run's model is given each point's label, as it was trained.
#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class TestLoss final : public Metric {
 public:
  explicit TestLoss(const Options& o)
      : split_(o.text("split")),
        timesteps_(o.integer_list("timesteps")),
        repeats_(o.integer("repeats")),
        batch_size_(o.integer("batch_size")) {}

  Scope scope() const override { return Scope::checkpoint; }

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    torch::NoGradGuard no_grad;
    const auto& data = split_ == "train" ? ctx.train : ctx.test;
    const auto x = data.x;
    const auto device = x.device();
    const auto total_steps = ctx.process.timesteps();
    for (const auto t : timesteps_) {
      if (t >= total_steps) {
        throw InputError("test_loss: timestep " + std::to_string(t) + " is out of range for a " +
                         std::to_string(total_steps) + "-step process (use 0.." +
                         std::to_string(total_steps - 1) + ")");
      }
    }
    // Draws come from the context's generator on its own device, then move to the data.
    auto gen = ctx.generator.defined() ? ctx.generator : at::detail::createCPUGenerator(0);
    const auto draw_options = torch::TensorOptions().device(gen.device());
    const auto chosen = torch::tensor(timesteps_, torch::kLong).to(gen.device());
    const auto prediction = ctx.model.prediction();

    // L = E_{x0, t, eps} |f(x_t, t) - target(x0, eps, t)|^2 per element (Ho et al. 2020, eq. 14)
    double squared_error = 0.0;
    std::int64_t count = 0;
    for (std::int64_t r = 0; r < repeats_; ++r) {
      for (std::int64_t start = 0; start < x.size(0); start += batch_size_) {
        const auto end = std::min(start + batch_size_, x.size(0));
        const auto x0 = x.slice(0, start, end);
        const auto labels = data.labels.defined() ? data.labels.slice(0, start, end) : torch::Tensor();
        const auto b = x0.size(0);
        torch::Tensor t;
        if (timesteps_.empty()) {
          t = torch::randint(0, total_steps, {b}, gen, draw_options.dtype(torch::kLong));
        } else {
          const auto pick = torch::randint(0, chosen.size(0), {b}, gen,
                                           draw_options.dtype(torch::kLong));
          t = chosen.index_select(0, pick);
        }
        t = t.to(device);
        const auto noise =
            torch::randn(x0.sizes(), gen, draw_options.dtype(x0.scalar_type())).to(device);
        const auto x_t = ctx.process.q_sample(x0, t, noise);
        const auto output = ctx.model.forward(x_t, t.to(torch::kFloat32), data_conditioning(ctx, labels));
        const auto target = ctx.process.target(prediction, x0, noise, t);
        squared_error += (output.to(torch::kFloat64) - target.to(torch::kFloat64))
                             .pow(2)
                             .sum()
                             .item<double>();
        count += output.numel();
      }
    }
    const double loss = count > 0 ? squared_error / double(count) : 0.0;
    std::vector<MetricValue> values{{split_ + "_loss", variant(prediction, ctx.class_conditional), loss, Better::lower}};
    add_reference(values, split_, x.size(0));
    return values;
  }

 private:
  // ",labels" when the model was given each point's label: a different measurement from the
  // unconditional one, so never the same column.
  std::string variant(Prediction prediction, bool labels) const {
    std::ostringstream out;
    out << "mse(prediction=" << prediction_name(prediction) << ",repeats=" << repeats_
        << ",timesteps=";
    if (timesteps_.empty()) out << "all";
    for (std::size_t i = 0; i < timesteps_.size(); ++i) {
      out << (i ? "," : "[") << timesteps_[i] << (i + 1 == timesteps_.size() ? "]" : "");
    }
    out << (labels ? ",labels)" : ")");
    return out.str();
  }

  std::string split_;
  std::vector<std::int64_t> timesteps_;
  std::int64_t repeats_, batch_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_metric(
      {"test_loss", "1.1.0",
       "Mean squared error of the model's prediction (epsilon, x0 or v) on held-out data",
       {OptionSpec::text("split", "test", "data to evaluate on; 'train' reports train_loss",
                         {"test", "train"}),
        OptionSpec::integer_list("timesteps", {},
                                 "timestep indices t is drawn from uniformly; [] means all 0..T-1")
            .at_least(0),
        OptionSpec::integer("repeats", 4, "random (t, noise) draws per data point").at_least(1),
        OptionSpec::integer("batch_size", 4096, "points per model call").at_least(1)}},
      [](const Options& o) { return std::make_unique<TestLoss>(o); });
}
