#include "accel/cuda_graphs.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "training/optimizer_state.hpp"
#include "training/train_step.hpp"

#if DIFFLAB_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace difflab {
namespace {

bool& graphs_switch() {
  static bool enabled = [] {
    const char* env = std::getenv("DIFFLAB_CUDA_GRAPHS");
    return !(env && std::string(env) == "0");
  }();
  return enabled;
}

CaptureFailures& forced_failures() {
  static CaptureFailures forced = [] {
    CaptureFailures out;
    const char* env = std::getenv("DIFFLAB_FORCE_CAPTURE_FAILURE");
    const std::string value = env ? env : "";
    if (value == "train" || value == "train,sample" || value == "sample,train") out.train = true;
    if (value == "sample" || value == "train,sample" || value == "sample,train") out.sample = true;
    if (!value.empty() && !out.train && !out.sample) {
      throw InputError("DIFFLAB_FORCE_CAPTURE_FAILURE=" + value +
                       ": expected train, sample or train,sample (or leave it unset)");
    }
    return out;
  }();
  return forced;
}

// Why a capture failed, in one line.
std::string reason(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  const std::string why = torch_error ? torch_error->what_without_backtrace() : e.what();
  return why.substr(0, why.find('\n'));
}

template <typename State>
State& adam_state(torch::optim::Optimizer& optimizer, const torch::Tensor& param) {
  auto& states = optimizer.state();
  const auto key = optimizer_state_key(param);
  auto it = states.find(key);
  if (it == states.end()) {  // what torch::optim creates on a parameter's first step
    auto state = std::make_unique<State>();
    state->step(0);
    state->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    state->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    it = states.emplace(key, std::move(state)).first;
  }
  return static_cast<State&>(*it->second);
}

// Every tensor a capture reads by address: a graph replays those addresses.
std::vector<const void*> storage_of(torch::nn::Module& model) {
  std::vector<const void*> out;
  for (const auto& p : model.parameters()) out.push_back(p.data_ptr());
  for (const auto& b : model.buffers()) out.push_back(b.data_ptr());
  return out;
}

#if DIFFLAB_CUDA_GRAPHS
// Runs `work` on a side stream of `device`, the device synchronised before and after: captures
// cannot use the legacy default stream, and warm-up runs where the capture will.
template <typename Work>
void on_side_stream(torch::Device device, Work&& work) {
  auto stream = c10::cuda::getStreamFromPool(false, device.index());
  c10::cuda::device_synchronize();
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    work();
  }
  c10::cuda::device_synchronize();
}

// Captures `work` on a side stream.
template <typename Work>
void capture(at::cuda::CUDAGraph& graph, const std::vector<torch::Generator>& generators, torch::Device device,
             Work&& work) {
  on_side_stream(device, [&] {
    for (const auto& generator : generators) graph.register_generator_state(generator);
    graph.capture_begin();
    try {
      work();
    } catch (...) {
      try {
        graph.capture_end();
      } catch (...) {
      }
      graph.reset();
      throw;
    }
    graph.capture_end();
  });
}
#endif

// Eager runs before a capture: on CUDA on the side stream the capture will use.
void warm_up(torch::Device device, const std::function<void()>& work) {
#if DIFFLAB_CUDA_GRAPHS
  if (device.is_cuda()) {
    on_side_stream(device, work);
    return;
  }
#else
  (void)device;
#endif
  work();
}

// One captured graph. Its capture throws where none can be made (a failure forced for tests,
// before anything touches the device; a build without CUDA graphs), so the callers' fallback to
// eager work is compiled, and reached by tests, on every build.
class DeviceGraph {
 public:
  template <typename Work>
  void capture(const std::vector<torch::Generator>& generators, torch::Device device, bool forced, Work&& work) {
    if (forced) throw std::runtime_error("forced (DIFFLAB_FORCE_CAPTURE_FAILURE)");
#if DIFFLAB_CUDA_GRAPHS
    difflab::capture(graph_, generators, device, work);
#else
    (void)generators;
    (void)device;
    (void)work;
    throw std::logic_error("this build cannot capture CUDA graphs (CMake said: difflab: CUDA graphs 0)");
#endif
  }

  void replay() {
#if DIFFLAB_CUDA_GRAPHS
    graph_.replay();
#endif
  }

 private:
#if DIFFLAB_CUDA_GRAPHS
  at::cuda::CUDAGraph graph_;
#endif
};

}  // namespace

bool cuda_graphs_built() { return DIFFLAB_CUDA_GRAPHS != 0; }
bool cuda_graphs_enabled() { return cuda_graphs_built() && graphs_switch(); }
void set_cuda_graphs_enabled(bool enabled) { graphs_switch() = enabled; }

CaptureFailures forced_capture_failures() { return forced_failures(); }
void set_forced_capture_failures(CaptureFailures failures) { forced_failures() = failures; }

bool captures_training_steps(torch::Device device) {
  return (device.is_cuda() && cuda_graphs_enabled()) || forced_capture_failures().train;
}

// --- DeviceAdam --------------------------------------------------------------------------------

bool DeviceAdam::supports(torch::optim::Optimizer& optimizer) {
  if (optimizer.param_groups().size() != 1) return false;
  auto& options = optimizer.param_groups().front().options();
  if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) return !adam->amsgrad();
  if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) return !adamw->amsgrad();
  return false;
}

DeviceAdam::DeviceAdam(torch::optim::Optimizer& optimizer) : optimizer_(optimizer) {
  if (!supports(optimizer)) {
    throw std::invalid_argument("DeviceAdam: needs one parameter group of Adam or AdamW without amsgrad");
  }
  auto& group = optimizer.param_groups().front();
  auto& options = group.options();
  std::tuple<double, double> betas;
  std::optional<std::int64_t> step;
  const auto add = [&](auto& state, const torch::Tensor& param) {
    if (step && *step != state.step()) {
      throw std::invalid_argument("DeviceAdam: the parameters have taken different numbers of steps");
    }
    step = state.step();
    slots_.push_back({param, state.exp_avg(), state.exp_avg_sq(), &state});
  };
  if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
    decoupled_ = true;
    betas = adamw->betas();
    eps_ = adamw->eps();
    weight_decay_ = adamw->weight_decay();
    for (const auto& p : group.params()) add(adam_state<torch::optim::AdamWParamState>(optimizer, p), p);
  } else {
    auto& adam = static_cast<torch::optim::AdamOptions&>(options);
    decoupled_ = false;
    betas = adam.betas();
    eps_ = adam.eps();
    weight_decay_ = adam.weight_decay();
    for (const auto& p : group.params()) add(adam_state<torch::optim::AdamParamState>(optimizer, p), p);
  }
  beta1_ = std::get<0>(betas);
  beta2_ = std::get<1>(betas);
  const auto device = slots_.empty() ? torch::Device(torch::kCPU) : slots_.front().param.device();
  const auto scalar = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  step_ = torch::full({}, static_cast<double>(step.value_or(0)), scalar);
  lr_ = torch::zeros({}, scalar);
  sync_learning_rate();
}

void DeviceAdam::sync_learning_rate() {
  const double lr = optimizer_.param_groups().front().options().get_lr();
  if (lr == host_lr_) return;
  lr_.fill_(lr);
  host_lr_ = lr;
}

// torch::optim::Adam::step / AdamW::step, with the host doubles that depend on the step count
// (the bias corrections and the step size) computed on the device in float64, then rounded to
// the parameters' float32 as torch rounds its host scalars.
void DeviceAdam::step() {
  torch::NoGradGuard no_grad;
  step_.add_(1);
  const auto bias1 = 1.0 - torch::pow(beta1_, step_);
  const auto bias2 = 1.0 - torch::pow(beta2_, step_);
  const auto dtype = slots_.empty() ? torch::kFloat : slots_.front().param.scalar_type();
  const auto step_size = (lr_ / bias1).to(dtype);
  const auto bias2_sqrt = bias2.sqrt().to(dtype);
  const auto decay = (1.0 - lr_ * weight_decay_).to(dtype);
  for (auto& s : slots_) {
    auto grad = s.param.grad();
    s.stepped = grad.defined();
    if (!s.stepped) continue;
    if (weight_decay_ != 0) {
      if (decoupled_) {
        s.param.mul_(decay);
      } else {
        grad = grad.add(s.param, weight_decay_);
      }
    }
    s.exp_avg.mul_(beta1_).add_(grad, 1 - beta1_);
    s.exp_avg_sq.mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    const auto denom = (s.exp_avg_sq.sqrt() / bias2_sqrt).add_(eps_);
    s.param.sub_(s.exp_avg * step_size / denom);  // addcdiv_(exp_avg, denom, -step_size)
  }
}

void DeviceAdam::count_step() {
  for (auto& s : slots_) {
    if (!s.stepped) continue;
    if (decoupled_) {
      auto& state = static_cast<torch::optim::AdamWParamState&>(*s.state);
      state.step(state.step() + 1);
    } else {
      auto& state = static_cast<torch::optim::AdamParamState&>(*s.state);
      state.step(state.step() + 1);
    }
  }
}

// --- ReplayedWork ------------------------------------------------------------------------------

struct ReplayedWork::Graph {
  DeviceGraph graph;
  std::vector<const void*> generators;  // the ones registered at capture
};

ReplayedWork::ReplayedWork(std::function<void()> work, int warmup)
    : work_(std::move(work)), warmup_left_(warmup) {}

ReplayedWork::~ReplayedWork() = default;

bool ReplayedWork::captured() const { return graph_ != nullptr; }

void ReplayedWork::reset() { graph_.reset(); }

void ReplayedWork::operator()(const std::vector<torch::Generator>& generators, torch::Device device) {
  if (eager_only_ || !captures_training_steps(device)) {
    work_();
    return;
  }
  std::vector<const void*> ids;
  for (const auto& g : generators) ids.push_back(g.unsafeGetGeneratorImpl());
  if (graph_ && graph_->generators != ids) graph_.reset();
  if (warmup_left_ > 0) {
    --warmup_left_;
    warm_up(device, work_);
    return;
  }
  if (!graph_) {
    std::vector<torch::Tensor> states;  // a failed capture may have advanced them
    for (const auto& g : generators) states.push_back(g.get_state());
    auto graph = std::make_unique<Graph>();
    try {
      graph->graph.capture(generators, device, forced_capture_failures().train, work_);
    } catch (const std::exception& e) {
      spdlog::warn("CUDA graph capture of a training step failed, so it trains eagerly: {}", reason(e));
      eager_only_ = true;
      for (std::size_t i = 0; i < generators.size(); ++i) {
        auto generator = generators[i];  // a handle: sets the shared generator's state
        generator.set_state(states[i]);
      }
      work_();
      return;
    }
    graph->generators = ids;
    graph_ = std::move(graph);
  }
  graph_->graph.replay();
}

// --- GraphedTrainStep --------------------------------------------------------------------------

GraphedTrainStep::GraphedTrainStep(Denoiser& model, const DiffusionProcess& process,
                                   torch::optim::Optimizer& optimizer, double grad_clip,
                                   LossSettings loss, int warmup)
    : model_(model), process_(process), adam_(optimizer), grad_clip_(grad_clip),
      loss_settings_(loss), parameters_(model.parameters()),
      replay_(
          [this] {
            for (auto& p : parameters_) p.mutable_grad().reset();  // set to none: backward allocates
            const auto loss = denoising_loss(model_, process_, x0_, labels_, *generator_, loss_settings_);
            loss.backward();
            if (grad_clip_ > 0) clip_grad_norm_on_device(parameters_, grad_clip_);
            adam_.step();
            loss_ = loss.detach();
          },
          warmup) {}

torch::Tensor GraphedTrainStep::operator()(const torch::Tensor& x0, const torch::Tensor& labels,
                                           torch::Generator& generator) {
  const bool same_shape = x0_.defined() && x0_.sizes() == x0.sizes() &&
                          labels_.defined() == labels.defined() &&
                          (!labels.defined() || labels_.sizes() == labels.sizes());
  if (!same_shape) {
    x0_ = torch::empty_like(x0);
    labels_ = labels.defined() ? torch::empty_like(labels) : torch::Tensor();
    replay_.reset();
  }
  x0_.copy_(x0);
  if (labels.defined()) labels_.copy_(labels);
  generator_ = generator;
  adam_.sync_learning_rate();
  replay_({generator}, x0.device());
  adam_.count_step();
  return replay_.captured() ? loss_.clone() : loss_;  // a replayed graph rewrites loss_ in place
}

// --- SamplerGraphs -----------------------------------------------------------------------------

struct SamplerGraphs::Entry {
  Entry(const Sampler& s, const SamplingContext& ctx, const torch::Tensor& x)
      : sampler(&s), model(&ctx.model), process(&ctx.process), shape(x.sizes().vec()),
        labelled(ctx.cond.labels.defined()), guidance_scale(ctx.cond.guidance_scale) {}

  bool serves(const Sampler& s, const SamplingContext& ctx, const torch::Tensor& x) const {
    return sampler == &s && model == &ctx.model && process == &ctx.process && shape == x.sizes().vec() &&
           labelled == ctx.cond.labels.defined() && guidance_scale == ctx.cond.guidance_scale;
  }

  const Sampler* sampler;
  const Denoiser* model;
  const DiffusionProcess* process;
  std::vector<std::int64_t> shape;
  bool labelled;
  double guidance_scale;
  std::vector<const void*> weights;
  int calls = 0;
  bool eager_only = false;  // its capture failed (a sampler that reads a value back to the host)
  std::unique_ptr<DeviceGraph> graph;
  std::optional<torch::Generator> generator;
  torch::Tensor x_T, labels, out;
};

SamplerGraphs::SamplerGraphs() = default;
SamplerGraphs::SamplerGraphs(SamplerGraphs&&) noexcept = default;
SamplerGraphs& SamplerGraphs::operator=(SamplerGraphs&&) noexcept = default;
SamplerGraphs::~SamplerGraphs() = default;

torch::Tensor SamplerGraphs::sample(const Sampler& sampler, const SamplingContext& ctx,
                                    const torch::Tensor& x_T) {
  const bool forced = forced_capture_failures().sample;
  if ((!forced && (!x_T.is_cuda() || !cuda_graphs_enabled())) || ctx.on_step) return sampler.sample(ctx, x_T);
  Entry* entry = nullptr;
  for (auto& e : entries_) {
    if (e->serves(sampler, ctx, x_T)) entry = e.get();
  }
  if (!entry) {
    entries_.push_back(std::make_unique<Entry>(sampler, ctx, x_T));
    entry = entries_.back().get();
  }
  if (entry->eager_only || entry->calls++ == 0) return sampler.sample(ctx, x_T);  // warm-up
  const auto weights = storage_of(ctx.model);
  if (entry->graph && entry->weights != weights) entry->graph.reset();
  if (!entry->graph) {
    entry->generator = ctx.generator.clone();
    entry->x_T = x_T.clone();
    entry->labels = ctx.cond.labels.defined() ? ctx.cond.labels.clone() : torch::Tensor();
    SamplingContext captured{ctx.model, ctx.process, *entry->generator,
                             Conditioning{entry->labels, ctx.cond.guidance_scale}, {}};
    auto graph = std::make_unique<DeviceGraph>();
    try {
      graph->capture({*entry->generator}, x_T.device(), forced,
                     [&] { entry->out = sampler.sample(captured, entry->x_T); });
    } catch (const std::exception& e) {
      spdlog::warn("CUDA graph capture of a sampler failed, so it runs eagerly: {}", reason(e));
      entry->eager_only = true;
      return sampler.sample(ctx, x_T);
    }
    entry->graph = std::move(graph);
    entry->weights = weights;
  }
  entry->generator->set_state(ctx.generator.get_state());
  entry->x_T.copy_(x_T);
  if (entry->labels.defined()) entry->labels.copy_(ctx.cond.labels);
  entry->graph->replay();
  return entry->out.clone();
}

}  // namespace difflab
