#pragma once
// Bookkeeping shared by the multistep exponential integrators (dpmpp_2m, dpmpp_2m_sde,
// dpmpp_3m_sde, unipc): noise levels in DPM-Solver's notation and the last x0 predictions.
#include <cmath>
#include <cstddef>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "difflab/diffusion.hpp"
#include "difflab/options.hpp"
#include "difflab/sampler.hpp"

namespace difflab::multistep {

/// A noise level as Lu et al. 2022 write it: x = alpha x0 + sigma eps, lambda = log(alpha / sigma).
struct Level {
  double alpha;   // sqrt(abar)
  double sigma;   // sqrt(1 - abar)
  double lambda;  // -inf at a zero terminal SNR, +inf at the data
};

inline Level level_at(const DiffusionProcess& p, double t) {
  const double abar = p.alpha_bar_at(t);
  return {std::sqrt(abar), std::sqrt(1.0 - abar), p.lambda_at(t)};
}

/// One model call's x0 prediction and the lambda it was made at.
struct Evaluation {
  double lambda;
  torch::Tensor x0;
};

/// The newest `capacity` evaluations, newest first. One made at lambda = -inf (a zero terminal
/// SNR) is forgotten once a newer one arrives: the step after it has h_prev = inf, r = h_prev / h
/// = inf, and every difference over it vanishes, so that step is first order by construction
/// rather than through inf / inf.
class History {
 public:
  explicit History(std::size_t capacity) : capacity_(capacity) {}

  void push(double lambda, torch::Tensor x0) {
    if (!entries_.empty() && std::isinf(entries_.front().lambda)) entries_.clear();
    entries_.push_front({lambda, std::move(x0)});
    if (entries_.size() > capacity_) entries_.pop_back();
  }

  std::size_t size() const { return entries_.size(); }
  const Evaluation& operator[](std::size_t i) const { return entries_[i]; }  // 0: the newest
  /// The step that ended at evaluation i: lambda_i - lambda_{i+1}, finite.
  double h(std::size_t i) const { return entries_[i].lambda - entries_[i + 1].lambda; }

 private:
  std::size_t capacity_;
  std::deque<Evaluation> entries_;
};

/// A sampler's own options followed by the shared spacing options.
inline std::vector<OptionSpec> with_spacing(std::vector<OptionSpec> own) {
  const auto spacing = TimestepSpacing::options();
  own.insert(own.end(), spacing.begin(), spacing.end());
  return own;
}

}  // namespace difflab::multistep
