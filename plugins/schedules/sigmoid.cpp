// sigmoid: betas follow a logistic curve between beta_start and beta_end (GeoDiff, Xu et al. 2022).
#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class SigmoidSchedule final : public NoiseSchedule {
 public:
  explicit SigmoidSchedule(const Options& o)
      : range_(BetaRange::from(o, "sigmoid")), start_(o.real("start")), end_(o.real("end")) {
    if (!(start_ < end_)) {
      throw InputError("schedule 'sigmoid': start (" + format_option(o.values().at("start")) +
                       ") must be below end (" + format_option(o.values().at("end")) + ")");
    }
  }

  // GeoDiff (Xu et al. 2022) code: beta_t = sigmoid(linspace(start, end, T)) (b1 - b0) + b0.
  torch::Tensor betas() const override {
    const auto x = torch::linspace(start_, end_, range_.timesteps, torch::kFloat64);
    return torch::sigmoid(x) * (range_.beta_end - range_.beta_start) + range_.beta_start;
  }

 private:
  BetaRange range_;
  double start_, end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = BetaRange::options();
  options.push_back(
      OptionSpec::real("start", -6.0, "logit at t = 1 (-6: beta_1 is 0.25% of b1 - b0 above b0)"));
  options.push_back(
      OptionSpec::real("end", 6.0, "logit at t = T (6: beta_T is 0.25% of b1 - b0 below b1)"));
  registrar.add_schedule(
      {"sigmoid", "1.0.0", "Betas b0 + (b1 - b0) sigmoid(linspace(start, end, T)) (GeoDiff)",
       std::move(options)},
      [](const Options& o) { return std::make_unique<SigmoidSchedule>(o); });
}
