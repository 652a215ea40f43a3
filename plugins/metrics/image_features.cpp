// Feature extraction for the image metrics, one piece: loading TorchScript Inception or
// difflab's feature network, its cached features per data split, and the statistics on them.
#include "image_features.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "difflab/errors.hpp"

namespace difflab::image_metrics {
namespace fs = std::filesystem;

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void require_images(const torch::Tensor& images, const std::string& what) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3)) {
    throw InputError(what + " needs image data [N, C, H, W] with 1 or 3 channels, got shape " +
                     c10::str(images.sizes()));
  }
}

torch::Tensor softmax_if_needed(const torch::Tensor& out) {
  const auto p = out.to(torch::kDouble);
  const bool is_probability = p.min().item<double>() >= 0 &&
                              (p.sum(1) - 1).abs().max().item<double>() < 1e-3;
  return is_probability ? p : torch::softmax(p, 1);
}

std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t h = 1469598103934665603ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

}  // namespace

std::string hash_weights(const std::vector<torch::Tensor>& tensors) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto& tensor : tensors) {
    const auto t = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const auto bytes = static_cast<std::size_t>(t.numel()) * sizeof(float);
    const auto* words = static_cast<const std::uint64_t*>(t.data_ptr());
    for (std::size_t i = 0; i < bytes / 8; ++i) h = (h ^ words[i]) * 1099511628211ULL;
    h = fnv1a(static_cast<const char*>(t.data_ptr()) + bytes / 8 * 8, bytes % 8, h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

void add_extractor(std::vector<MetricValue>& values, const FeatureExtractor& extractor) {
  add_protocol(values, "extractor", extractor.name());
  add_protocol(values, "extractor_weights", extractor.weights_hash());
}

torch::jit::Module load_torchscript(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path.string() + ": no such network file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    throw InputError(path.string() + ": not a TorchScript module (" + first_line(e.what_without_backtrace()) + ")");
  }
  if (!module.find_method("forward")) throw InputError(path.string() + ": the module has no forward()");
  module.eval();
  return module;
}

namespace {

// ---- TorchScript Inception ------------------------------------------------------------------

class Inception final : public FeatureExtractor {
 public:
  explicit Inception(const fs::path& path)
      : name_("inception:" + path.filename().string()), path_(path.string()), module_(load_torchscript(path)) {
    std::vector<torch::Tensor> weights;
    for (const auto& p : module_.named_parameters()) weights.push_back(p.value);
    for (const auto& b : module_.named_buffers()) weights.push_back(b.value);
    weights_hash_ = hash_weights(weights);
    const auto& schema = module_.get_method("forward").function().getSchema();
    has_no_output_bias_ = schema.argumentIndexWithName("no_output_bias").has_value();
    if (has_no_output_bias_) return;
    for (const auto& p : module_.named_parameters()) {
      if (p.name == "output.weight" || p.name == "fc.weight") output_weight_ = p.value.to(torch::kDouble);
    }
  }

  const std::string& name() const override { return name_; }
  const std::string& weights_hash() const override { return weights_hash_; }

  torch::Tensor features(const torch::Tensor& images) override { return run(images, true); }
  torch::Tensor probabilities(const torch::Tensor& images) override {
    if (has_no_output_bias_) return softmax_if_needed(run(images, false));
    if (!output_weight_.defined()) {
      throw InputError(path_ + ": the Inception score needs logits without the output bias, and this "
                       "network has neither forward(..., no_output_bias) nor an output.weight or "
                       "fc.weight; use StyleGAN2-ADA's inception-2015-12-05.pt");
    }
    return torch::softmax(features(images).mm(output_weight_.t()), 1);
  }
  std::vector<torch::Tensor> layers(const torch::Tensor&) override {
    throw InputError(path_ + ": an Inception network gives no layers for the LPIPS baseline");
  }

 private:
  torch::Tensor run(const torch::Tensor& images, bool return_features) {
    require_images(images, "the Inception network");
    if (images.device() != device_) {
      module_.to(images.device());
      device_ = images.device();
    }
    return batched(images, 200, [&](const torch::Tensor& batch) {
      torch::Tensor out;
      try {
        auto forward = module_.get_method("forward");
        out = has_no_output_bias_ && !return_features
                  ? forward({to_uint8_rgb(batch), false}, {{"no_output_bias", true}}).toTensor()
                  : forward({to_uint8_rgb(batch), return_features}).toTensor();
      } catch (const c10::Error& e) {
        throw InputError(path_ + ": forward(x, " + (return_features ? "True" : "False") +
                         ") failed: " + first_line(e.what_without_backtrace()));
      }
      if (out.dim() != 2 || out.size(0) != batch.size(0)) {
        throw InputError(path_ + ": forward() returned shape " + c10::str(out.sizes()) + ", expected [" +
                         std::to_string(batch.size(0)) + ", D]");
      }
      return out.to(torch::kDouble);
    });
  }

  std::string name_, path_, weights_hash_;
  torch::jit::Module module_;
  bool has_no_output_bias_ = false;
  torch::Tensor output_weight_;  // [K, D] float64 on the CPU, when forward has no no_output_bias
  torch::Device device_ = torch::kCPU;
};

// ---- difflab's feature network ----------------------------------------------------------------

// Three conv blocks (GroupNorm, SiLU, 2x average pooling between them) and a linear classifier
// on the globally pooled last block: 64-d features, cheap enough to train on the CPU.
struct CnnImpl : torch::nn::Module {
  CnnImpl(std::int64_t channels, std::int64_t classes) {
    const std::int64_t widths[] = {16, 32, 64};
    std::int64_t in = channels;
    for (int i = 0; i < 3; ++i) {
      convs.push_back(register_module("conv" + std::to_string(i),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, widths[i], 3).padding(1))));
      norms.push_back(register_module("norm" + std::to_string(i),
                                      torch::nn::GroupNorm(torch::nn::GroupNormOptions(8, widths[i]))));
      in = widths[i];
    }
    head = register_module("head", torch::nn::Linear(in, classes));
  }

  std::vector<torch::Tensor> layers(torch::Tensor x) {
    std::vector<torch::Tensor> out;
    for (std::size_t i = 0; i < convs.size(); ++i) {
      if (i > 0) x = torch::avg_pool2d(x, 2);
      x = torch::silu(norms[i]->forward(convs[i]->forward(x)));
      out.push_back(x);
    }
    return out;
  }
  torch::Tensor features(const torch::Tensor& x) { return layers(x).back().mean({2, 3}); }
  torch::Tensor logits(const torch::Tensor& x) { return head->forward(features(x)); }

  std::vector<torch::nn::Conv2d> convs;
  std::vector<torch::nn::GroupNorm> norms;
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Cnn);

// Content hash of a split, 8 bytes at a time (a full pass over Fashion-MNIST takes ~0.1 s).
std::uint64_t content_hash(const DataSplit& split) {
  const auto x = split.x.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto labels = split.labels.to(torch::kCPU, torch::kLong).contiguous();
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto& t : {x, labels}) {
    const auto* words = static_cast<const std::uint64_t*>(t.data_ptr());
    const auto n = static_cast<std::size_t>(t.numel() * t.element_size()) / 8;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ words[i]) * 1099511628211ULL;
    const auto tail = static_cast<std::size_t>(t.numel() * t.element_size()) % 8;
    h = fnv1a(static_cast<const char*>(t.data_ptr()) + n * 8, tail, h);
  }
  return h;
}

fs::path default_cache_dir() {
  if (const char* dir = std::getenv("DIFFLAB_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "difflab";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "difflab";
  return fs::temp_directory_path() / "difflab-cache";
}

// He-normal weights, unit norms, zero biases, all from one seeded generator: the same data and
// config give the same network in every process.
void initialise(Cnn& net, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (is_bias) {
      p.zero_();
    } else if (p.dim() == 1) {
      p.fill_(1.0);
    } else {
      const double fan_in = static_cast<double>(p.numel() / p.size(0));
      p.copy_(torch::randn(p.sizes(), gen) * std::sqrt(2.0 / fan_in));
    }
  }
}

class DifflabNet final : public FeatureExtractor {
 public:
  DifflabNet(const DataSplit& train, const FeatureNetConfig& config) {
    if (!train.labels.defined()) {
      throw InputError("difflab's feature network learns from the dataset's labels and this dataset "
                       "has none: give the metric a network (network: inception-2015-12-05.pt)");
    }
    require_images(train.x, "the difflab feature network");
    const auto classes = train.labels.max().item<std::int64_t>() + 1;
    const auto key = "cnn-v1|" + c10::str(train.x.sizes()) + "|" + std::to_string(classes) + "|" +
                     std::to_string(config.steps) + "|" + std::to_string(config.batch_size) + "|" +
                     std::to_string(config.lr) + "|" + std::to_string(content_hash(train));
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(fnv1a(key.data(), key.size())));
    name_ = "difflab-cnn:" + std::string(hex, 8);
    net_ = Cnn(train.x.size(1), classes);
    const auto dir = config.cache_dir.empty() ? default_cache_dir() : config.cache_dir;
    const auto file = dir / ("feature-net-" + std::string(hex) + ".pt");
    std::error_code ec;
    if (fs::exists(file, ec)) {
      try {
        torch::load(net_, file.string());
        loaded_from_ = file;
      } catch (const c10::Error&) {
        // a damaged cache entry is trained again and replaced
      }
    }
    if (loaded_from_.empty()) train_and_cache(train, config, file);
    std::vector<torch::Tensor> weights = net_->parameters();
    for (const auto& b : net_->buffers()) weights.push_back(b);
    weights_hash_ = hash_weights(weights);
    net_->to(train.x.device());
    net_->eval();
  }

  const std::string& name() const override { return name_; }
  const std::string& weights_hash() const override { return weights_hash_; }
  const fs::path& cache_file() const { return loaded_from_; }

  torch::Tensor features(const torch::Tensor& images) override {
    return apply(images, [&](const torch::Tensor& b) { return net_->features(b); });
  }
  torch::Tensor probabilities(const torch::Tensor& images) override {
    const auto& weight = net_->head->weight;  // the logits without the head's bias, as for Inception
    return apply(images, [&](const torch::Tensor& b) { return torch::softmax(net_->features(b).mm(weight.t()), 1); });
  }
  std::vector<torch::Tensor> layers(const torch::Tensor& images) override {
    require_images(images, name_);
    torch::NoGradGuard no_grad;
    return net_->layers(images.to(device()));
  }

 private:
  torch::Device device() { return net_->parameters().front().device(); }

  torch::Tensor apply(const torch::Tensor& images, const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
    require_images(images, name_);
    torch::NoGradGuard no_grad;
    const auto dev = device();
    return batched(images, 500, [&](const torch::Tensor& b) { return fn(b.to(dev)).to(torch::kDouble); });
  }

  void train_and_cache(const DataSplit& train, const FeatureNetConfig& config, const fs::path& file) {
    const auto start = std::chrono::steady_clock::now();
    torch::AutoGradMode enable_grad(true);  // metrics run under NoGradGuard
    auto gen = at::detail::createCPUGenerator(20151205);
    initialise(net_, gen);
    const auto device = train.x.device();
    net_->to(device);
    net_->train();
    torch::optim::Adam optimizer(net_->parameters(), torch::optim::AdamOptions(config.lr));
    const auto n = train.x.size(0);
    const auto batch = std::min(config.batch_size, n);
    double correct = 0, seen = 0;
    for (std::int64_t step = 0; step < config.steps; ++step) {
      const auto idx = torch::randint(0, n, {batch}, gen, torch::kLong).to(device);
      const auto x = train.x.index_select(0, idx);
      const auto y = train.labels.index_select(0, idx);
      const auto logits = net_->logits(x);
      const auto loss = torch::cross_entropy_loss(logits, y);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (step >= config.steps - std::max<std::int64_t>(1, config.steps / 10)) {  // last tenth
        correct += logits.argmax(1).eq(y).sum().item<double>();
        seen += static_cast<double>(batch);
      }
    }
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    const auto tmp = file.string() + ".tmp-" + std::to_string(::getpid());
    try {
      torch::save(net_, tmp);
      fs::rename(tmp, file, ec);
      if (!ec) loaded_from_ = file;
    } catch (const c10::Error&) {
      fs::remove(tmp, ec);  // an unwritable cache costs a retrain next time, nothing else
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "difflab feature network " << name_ << ": trained " << config.steps << " steps in "
              << static_cast<int>(seconds) << " s, train accuracy " << static_cast<int>(100 * correct / seen)
              << "%" << (loaded_from_.empty() ? " (not cached)" : ", cached in " + file.string()) << "\n";
  }

  std::string name_, weights_hash_;
  Cnn net_{nullptr};
  fs::path loaded_from_;
};

}  // namespace

std::vector<OptionSpec> extractor_options(const std::string& network_help) {
  return {OptionSpec::text("network", "", network_help),
          OptionSpec::integer("feature_steps", 1500,
                              "training steps of difflab's feature network (used without a network)")
              .at_least(1),
          OptionSpec::text("cache_dir", "",
                           "where difflab's feature network is cached (empty: $DIFFLAB_CACHE_DIR, "
                           "else ~/.cache/difflab)")};
}

std::vector<OptionSpec> inception_options(const std::string& without_network) {
  return extractor_options("TorchScript Inception file (inception-2015-12-05.pt); empty: " + without_network);
}

FeatureNetConfig feature_net_config(const Options& options) {
  FeatureNetConfig config;
  config.steps = options.integer("feature_steps");
  config.cache_dir = options.text("cache_dir");
  return config;
}

std::shared_ptr<FeatureExtractor> load_inception(const fs::path& path) {
  return std::make_shared<Inception>(path);
}

std::shared_ptr<FeatureExtractor> difflab_feature_net(const DataSplit& train, const FeatureNetConfig& config) {
  return std::make_shared<DifflabNet>(train, config);
}

ExtractorSlot::ExtractorSlot(std::string network, FeatureNetConfig config)
    : network_(std::move(network)), config_(std::move(config)) {
  if (!network_.empty()) extractor_ = load_inception(network_);  // a bad path fails validation
}

ExtractorSlot::ExtractorSlot(const Options& options)
    : ExtractorSlot(options.text("network"), feature_net_config(options)) {}

FeatureExtractor& ExtractorSlot::get(const DataSplit& train) {
  if (!extractor_) extractor_ = difflab_feature_net(train, config_);
  return *extractor_;
}

const torch::Tensor& ExtractorSlot::reference_features(const DataSplit& train, const torch::Tensor& images) {
  const bool same = reference_images_.defined() && reference_images_.data_ptr() == images.data_ptr() &&
                    reference_images_.sizes() == images.sizes();
  if (!same) {
    reference_features_ = get(train).features(images);
    reference_images_ = images;
  }
  return reference_features_;
}

Gaussian fit_gaussian(const torch::Tensor& features) {
  const auto f = features.to(torch::kCPU, torch::kDouble);
  if (f.size(0) < 2) throw InputError("a Gaussian fit needs at least 2 feature rows");
  const auto mean = f.mean(0);
  const auto centered = f - mean;
  return {mean, centered.t().mm(centered) / static_cast<double>(f.size(0) - 1)};
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  const auto diff = a.mean - b.mean;
  const auto eig = torch::linalg_eigh(a.cov);
  const auto& values = std::get<0>(eig);
  const auto& vectors = std::get<1>(eig);
  const auto sqrt_a = (vectors * values.clamp_min(0).sqrt()).mm(vectors.t());
  auto m = sqrt_a.mm(b.cov).mm(sqrt_a);
  m = (m + m.t()) / 2;  // symmetric up to round-off; make it exactly so for eigvalsh
  const double trace_sqrt = torch::linalg_eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
  const double d = diff.dot(diff).item<double>() + a.cov.trace().item<double>() +
                   b.cov.trace().item<double>() - 2 * trace_sqrt;
  return std::max(0.0, d);
}

double kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b, std::int64_t subsets,
                                 std::int64_t subset_size, torch::Generator& generator) {
  const auto fa = a.to(torch::kCPU, torch::kDouble), fb = b.to(torch::kCPU, torch::kDouble);
  const auto n = std::min({subset_size, fa.size(0), fb.size(0)});
  if (n < 2) throw InputError("kid needs at least 2 samples in each set");
  const double d = static_cast<double>(fa.size(1));
  const auto kernel = [d](const torch::Tensor& x, const torch::Tensor& y) { return (x.mm(y.t()) / d + 1).pow(3); };
  const double pairs = static_cast<double>(n) * static_cast<double>(n - 1);
  double total = 0;
  for (std::int64_t s = 0; s < subsets; ++s) {
    const auto x = fa.index_select(0, torch::randperm(fa.size(0), generator, torch::kLong).slice(0, 0, n));
    const auto y = fb.index_select(0, torch::randperm(fb.size(0), generator, torch::kLong).slice(0, 0, n));
    const auto kxx = kernel(x, x), kyy = kernel(y, y);
    total += ((kxx.sum() - kxx.diagonal().sum()) / pairs + (kyy.sum() - kyy.diagonal().sum()) / pairs -
              2 * kernel(x, y).mean())
                 .item<double>();
  }
  return total / static_cast<double>(subsets);
}

namespace {

constexpr std::int64_t kDistanceBlock = 1024;  // rows per block of a distance matrix

// Euclidean distances [rows of a, rows of b], each sqrt(sum (a_i - b_j)^2) without the
// |a|^2 + |b|^2 - 2 a.b expansion (cdist's donot_use_mm_for_euclid_dist): d(x, x) = 0 exactly and
// d(x, y) = d(y, x) bit for bit, so ties fall the same way in every matrix.
torch::Tensor distances(const torch::Tensor& a, const torch::Tensor& b) { return torch::cdist(a, b, 2.0, 2); }

// Distance from each row of x to its k-th nearest neighbour among the other rows: the (k+1)-th
// smallest of its distances, its own 0 included (prdc's get_kth_value(..., k + 1)).
torch::Tensor knn_radii(const torch::Tensor& x, std::int64_t k) {
  std::vector<torch::Tensor> parts;
  for (std::int64_t start = 0; start < x.size(0); start += kDistanceBlock) {
    const auto rows = x.slice(0, start, std::min(start + kDistanceBlock, x.size(0)));
    parts.push_back(std::get<0>(distances(rows, x).kthvalue(k + 1, 1)));
  }
  return torch::cat(parts);
}

}  // namespace

Prdc precision_recall_density_coverage(const torch::Tensor& real, const torch::Tensor& fake, std::int64_t k) {
  if (k < 1) throw InputError("precision and recall need k >= 1, got " + std::to_string(k));
  if (real.dim() != 2 || fake.dim() != 2 || real.size(1) != fake.size(1)) {
    throw InputError("precision and recall need two feature matrices [rows, D] of one D, got " +
                     c10::str(real.sizes()) + " and " + c10::str(fake.sizes()));
  }
  const auto r = real.to(torch::kCPU, torch::kDouble).contiguous();
  const auto f = fake.to(torch::kCPU, torch::kDouble).contiguous();
  const auto n = r.size(0), m = f.size(0);
  if (n <= k || m <= k) {
    throw InputError("precision and recall with k = " + std::to_string(k) + " need more than " + std::to_string(k) +
                     " rows in each set, got " + std::to_string(n) + " real and " + std::to_string(m) + " fake");
  }
  const auto radius_real = knn_radii(r, k), radius_fake = knn_radii(f, k);
  std::int64_t precise = 0;  // fakes inside some real row's ball
  std::int64_t inside = 0;   // (fake, real ball) pairs with the fake inside
  auto recalled = torch::zeros({n}, torch::kBool);  // reals inside some fake row's ball
  auto nearest_fake = torch::full({n}, std::numeric_limits<double>::infinity(), torch::kDouble);
  for (std::int64_t start = 0; start < m; start += kDistanceBlock) {
    const auto end = std::min(start + kDistanceBlock, m);
    const auto d = distances(f.slice(0, start, end), r);     // [fakes of the block, n]
    const auto in_real_ball = d < radius_real.unsqueeze(0);  // |F_j - R_i| < r(R_i)
    precise += in_real_ball.any(1).sum().item<std::int64_t>();
    inside += in_real_ball.sum().item<std::int64_t>();
    recalled.logical_or_((d < radius_fake.slice(0, start, end).unsqueeze(1)).any(0));  // < r(F_j)
    nearest_fake = torch::minimum(nearest_fake, d.amin({0}));
  }
  const auto recall_count = recalled.sum().item<std::int64_t>();
  const auto covered = (nearest_fake < radius_real).sum().item<std::int64_t>();
  const auto count = [](std::int64_t c) { return static_cast<double>(c); };
  return {count(precise) / count(m), count(recall_count) / count(n), count(inside) / (count(k) * count(m)),
          count(covered) / count(n)};
}

double inception_score(const torch::Tensor& probabilities, std::int64_t splits) {
  const auto p = probabilities.to(torch::kCPU, torch::kDouble);
  const auto n = p.size(0);
  splits = std::max<std::int64_t>(1, std::min(splits, n));
  double total = 0;
  for (std::int64_t i = 0; i < splits; ++i) {  // chunk() would make fewer, unequal splits
    const auto part = p.slice(0, i * n / splits, (i + 1) * n / splits);
    const auto marginal = part.mean(0, true);
    const auto kl = (part * ((part + 1e-12).log() - (marginal + 1e-12).log())).sum(1).mean();
    total += std::exp(kl.item<double>());
  }
  return total / static_cast<double>(splits);
}

torch::Tensor to_uint8_rgb(const torch::Tensor& images) {
  auto x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8);
  return x.size(1) == 1 ? x.repeat({1, 3, 1, 1}) : x;
}

std::vector<std::int64_t> timesteps_at(const std::vector<double>& fractions, std::int64_t T) {
  std::vector<std::int64_t> out;
  for (double f : fractions) out.push_back(std::llround(f * static_cast<double>(T - 1)));
  return out;
}

torch::Tensor reconstruct(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x0,
                          std::int64_t t, torch::Generator& generator, const Conditioning& cond) {
  const auto t_batch = torch::full({x0.size(0)}, t, x0.options().dtype(torch::kLong));
  const auto noise = torch::randn(x0.sizes(), generator, x0.options());
  const auto x_t = process.q_sample(x0, t_batch, noise);
  return denoise(model, process, x_t, t_batch, cond).x0;
}

torch::Tensor batched(const torch::Tensor& images, std::int64_t batch,
                      const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  std::vector<torch::Tensor> parts;
  for (std::int64_t start = 0; start < images.size(0); start += batch) {
    parts.push_back(fn(images.slice(0, start, std::min(start + batch, images.size(0)))).to(torch::kCPU));
  }
  return torch::cat(parts);
}

}  // namespace difflab::image_metrics
