// sigmoid: betas follow a logistic curve between beta_start and beta_end (GeoDiff, Xu et al. 2022).
#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class SigmoidSchedule final : public NoiseSchedule {
 public:
  explicit SigmoidSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), beta_start_(o.real("beta_start")),
        beta_end_(o.real("beta_end")), start_(o.real("start")), end_(o.real("end")) {
    if (beta_start_ > beta_end_) {
      throw InputError("schedule 'sigmoid': beta_start (" +
                       format_option(o.values().at("beta_start")) + ") exceeds beta_end (" +
                       format_option(o.values().at("beta_end")) +
                       "); betas must not shrink with t, swap them");
    }
    if (!(start_ < end_)) {
      throw InputError("schedule 'sigmoid': start (" + format_option(o.values().at("start")) +
                       ") must be below end (" + format_option(o.values().at("end")) + ")");
    }
  }

  // GeoDiff (Xu et al. 2022) code: beta_t = sigmoid(linspace(start, end, T)) (b1 - b0) + b0.
  torch::Tensor betas() const override {
    const auto x = torch::linspace(start_, end_, timesteps_, torch::kFloat64);
    return torch::sigmoid(x) * (beta_end_ - beta_start_) + beta_start_;
  }

 private:
  std::int64_t timesteps_;
  double beta_start_, beta_end_, start_, end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"sigmoid", "1.0.0", "Betas b0 + (b1 - b0) sigmoid(linspace(start, end, T)) (GeoDiff)",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T").at_least(1),
        OptionSpec::real("beta_start", 1e-4, "b0, the lower asymptote of the betas")
            .greater_than(0).less_than(1),
        OptionSpec::real("beta_end", 0.02, "b1, the upper asymptote of the betas")
            .greater_than(0).less_than(1),
        OptionSpec::real("start", -6.0, "logit at t = 1 (-6: beta_1 is 0.25% of b1 - b0 above b0)"),
        OptionSpec::real("end", 6.0, "logit at t = T (6: beta_T is 0.25% of b1 - b0 below b1)")}},
      [](const Options& o) { return std::make_unique<SigmoidSchedule>(o); });
}
