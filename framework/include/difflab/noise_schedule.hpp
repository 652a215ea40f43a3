#pragma once
// A noise schedule: the betas of a discrete-time forward process.
#include "difflab/export.hpp"
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/options.hpp"

namespace difflab {

/// The most diffusion steps a schedule may have: bounds the tables a run (and `runner validate`)
/// allocates; an unbounded T is an out-of-memory crash instead of an InputError.
constexpr std::int64_t kMaxTimesteps = 100000;

class DIFFLAB_API NoiseSchedule {
 public:
  virtual ~NoiseSchedule() = default;
  /// beta_1..beta_T as a float64 CPU tensor of length T, each in (0, 1).
  virtual torch::Tensor betas() const = 0;
};

/// Lin et al. 2024, Algorithm 1: the betas rescaled so that sqrt(abar) is shifted and scaled to
/// end at exactly 0 (a zero terminal SNR) while keeping its first value; the last beta becomes 1.
/// Any schedule can be rescaled: `rescale_zero_terminal_snr: true` in its sweep-file section.
DIFFLAB_API torch::Tensor rescale_zero_terminal_snr(const torch::Tensor& betas);

/// The range most schedules are given: `timesteps`, `beta_start`, `beta_end`. Schedules that share
/// these keys can be swapped by a sweep axis without touching the rest of the file.
struct DIFFLAB_API BetaRange {
  std::int64_t timesteps = 1000;
  double beta_start = 1e-4;
  double beta_end = 0.02;

  /// The three options (defaults 1000, 1e-4, 0.02; T up to kMaxTimesteps; betas in (0, 1)).
  static std::vector<OptionSpec> options();
  /// Reads them; InputError naming `plugin` when beta_start > beta_end (betas must not shrink).
  static BetaRange from(const Options& options, const std::string& plugin);
};

}  // namespace difflab
