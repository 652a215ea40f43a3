#pragma once
// What the image metrics (fid, kid, precision_recall, inception_score, lpips, psnr) share:
// feature extractors and the statistics on their features. Compiled into each of those plugins (a static library), not
// part of difflab's public API.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "difflab/dataset.hpp"
#include "difflab/diffusion.hpp"
#include "difflab/metric.hpp"
#include "difflab/options.hpp"

namespace difflab::image_metrics {

/// Maps images in [-1, 1] ([N, C, H, W]) to features, class probabilities and (for the LPIPS
/// baseline) per-layer activations. Not thread-safe.
class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  /// Names the extractor in metric variants, so values of different extractors never mix:
  /// "difflab-cnn:<hash>" or "inception:<file name>".
  virtual const std::string& name() const = 0;
  /// A hash of the network's weights (its parameters and buffers, in order, as float32 bytes):
  /// 16 hex digits, recorded with every value measured on its features.
  virtual const std::string& weights_hash() const = 0;
  virtual torch::Tensor features(const torch::Tensor& images) = 0;       // [N, D] float64, CPU
  /// softmax(features W^T) [N, K] float64, CPU: the classifier's logits WITHOUT its output bias,
  /// as the Inception score's references compute them (StyleGAN2-ADA no_output_bias,
  /// torch-fidelity logits_unbiased).
  virtual torch::Tensor probabilities(const torch::Tensor& images) = 0;
  /// Activations of each layer [N, C_l, H_l, W_l]; InputError where the extractor has none.
  virtual std::vector<torch::Tensor> layers(const torch::Tensor& images) = 0;
};

/// How the difflab feature network is trained when no `network` is given.
struct FeatureNetConfig {
  std::int64_t steps = 1500;
  std::int64_t batch_size = 128;
  double lr = 2e-3;
  std::filesystem::path cache_dir;  // empty: $DIFFLAB_CACHE_DIR, else ~/.cache/difflab
};

/// The options every image metric takes for its extractor: network (what `network_help` says),
/// feature_steps and cache_dir.
std::vector<OptionSpec> extractor_options(const std::string& network_help);
/// extractor_options for a metric whose `network` is a TorchScript Inception (fid, kid,
/// inception_score); `without_network` says what it uses when none is given.
std::vector<OptionSpec> inception_options(const std::string& without_network);
FeatureNetConfig feature_net_config(const Options& options);

/// The TorchScript module at `path`, in eval mode on the CPU. InputError naming the file when it
/// is missing, not a TorchScript module, or has no forward().
torch::jit::Module load_torchscript(const std::filesystem::path& path);

/// A TorchScript Inception (`forward(x, True)` -> [N, 2048] pool features; uint8 RGB NCHW in
/// 0..255). Its unbiased class probabilities come from `forward(x, False, no_output_bias=True)`
/// where forward takes that argument (StyleGAN2-ADA's inception-2015-12-05.pt), else from the
/// features and its `output.weight` or `fc.weight` [K, 2048]. InputError naming the file when it
/// is missing or not such a module.
std::shared_ptr<FeatureExtractor> load_inception(const std::filesystem::path& path);

/// The difflab feature network for a labelled train split: a small CNN classifier trained once
/// on the labels and cached on disk by the data's content hash and the training config. InputError
/// when the split has no labels.
std::shared_ptr<FeatureExtractor> difflab_feature_net(const DataSplit& train, const FeatureNetConfig& config);

/// `network` given: load_inception; else difflab_feature_net. Loaded once per metric instance.
class ExtractorSlot {
 public:
  ExtractorSlot(std::string network, FeatureNetConfig config);
  /// The extractor that a metric's extractor_options ask for.
  explicit ExtractorSlot(const Options& options);
  FeatureExtractor& get(const DataSplit& train);
  /// The extractor's features of `images`, remembered for the last tensor asked (the test split
  /// is the same tensor at every checkpoint of a run).
  const torch::Tensor& reference_features(const DataSplit& train, const torch::Tensor& images);

 private:
  std::string network_;
  FeatureNetConfig config_;
  std::shared_ptr<FeatureExtractor> extractor_;
  torch::Tensor reference_images_, reference_features_;
};

/// FNV-1a of the tensors' float32 bytes, in order, 8 bytes at a time: 16 hex digits.
std::string hash_weights(const std::vector<torch::Tensor>& tensors);

/// Adds the extractor and its weights' hash to the protocol of each of `values`.
void add_extractor(std::vector<MetricValue>& values, const FeatureExtractor& extractor);

/// Mean and covariance (float64) of feature rows.
struct Gaussian {
  torch::Tensor mean, cov;
};
Gaussian fit_gaussian(const torch::Tensor& features);

/// Frechet distance between two Gaussians (Heusel et al. 2017):
/// |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), with the square roots
/// taken by symmetric eigendecomposition in float64 (negative round-off eigenvalues clamped).
double frechet_distance(const Gaussian& a, const Gaussian& b);

/// Unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
/// `subsets` random subsets of `subset_size` rows of each set (Binkowski et al. 2018).
double kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b, std::int64_t subsets,
                                 std::int64_t subset_size, torch::Generator& generator);

/// Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al.
/// 2020) of `fake` feature rows F_1..F_M against `real` rows R_1..R_N, as the reference
/// implementation computes them (clovaai/generative-evaluation-prdc, prdc/prdc.py, compute_prdc):
/// r(R_i) and r(F_j) are the distances to the k-th nearest neighbour in the row's own set, the row
/// itself excluded (the (k+1)-th smallest of its distances, its own 0 included), and every
/// comparison is strict, as prdc's:
///   precision = 1/M  sum_j 1[exists i: |F_j - R_i| < r(R_i)]
///   recall    = 1/N  sum_i 1[exists j: |R_i - F_j| < r(F_j)]
///   density   = 1/kM sum_j #{i: |F_j - R_i| < r(R_i)}
///   coverage  = 1/N  sum_i 1[min_j |R_i - F_j| < r(R_i)]
/// (Kynkaanniemi et al.'s paper and code count a distance equal to the radius in; only ties differ.)
/// Distances are float64 sqrt(sum (x - y)^2), computed directly in blocks of rows, so a row's
/// distance to itself is exactly 0 and d(x, y) equals d(y, x) bit for bit: a set of distinct rows
/// against itself gives exactly 1, 1, 1, 1. InputError unless both are [rows, D] of one D with more
/// than k rows each.
struct Prdc {
  double precision, recall, density, coverage;
};
Prdc precision_recall_density_coverage(const torch::Tensor& real, const torch::Tensor& fake, std::int64_t k);

/// exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, sec. 4), averaged over min(splits, N)
/// splits of rows [i N / s, (i + 1) N / s), as StyleGAN2-ADA and torch-fidelity split.
double inception_score(const torch::Tensor& probabilities, std::int64_t splits);

/// Images in [-1, 1] as uint8 RGB 0..255 (grey repeated to three channels).
torch::Tensor to_uint8_rgb(const torch::Tensor& images);

/// Timesteps for reconstruction metrics: round(f (T - 1)) for each fraction f.
std::vector<std::int64_t> timesteps_at(const std::vector<double>& fractions, std::int64_t T);

/// The model's estimate of x0 from x_t = q_sample(x0, t, noise) with fresh noise, under `cond`
/// (the rows' labels for a class-conditional run, see data_conditioning).
torch::Tensor reconstruct(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x0,
                          std::int64_t t, torch::Generator& generator, const Conditioning& cond);

/// Rows of `images` split into batches, `fn` applied to each, results concatenated on the CPU.
torch::Tensor batched(const torch::Tensor& images, std::int64_t batch,
                      const std::function<torch::Tensor(const torch::Tensor&)>& fn);

}  // namespace difflab::image_metrics
