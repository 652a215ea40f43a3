#include <fstream>
#include <set>
#include <iostream>
#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "io/npy.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const char* kTiny = R"(name: engine_test
seed: 5
device: cpu
dataset:  {plugin: gmm2d, components: 4, train_size: 512, test_size: 128}
model:    {plugin: mlp, hidden: 32, layers: 2, time_embedding: 16}
schedule: {plugin: linear, timesteps: 100}
train:    {epochs: 4, batch_size: 128, lr: 1.0e-3, checkpoint_every: 2, grad_clip: 1.0}
evaluation:
  num_samples: 64
  samplers: [{plugin: ddim, steps: 10}]
  metrics:  [{plugin: test_loss}, {plugin: mmd}, {plugin: crash_once}]
)";

// A metric that throws the first time it sees the checkpoint of step `crash_step`: a crash
// between writing a checkpoint and finishing its evaluation.
int g_crash_step = -1;
class CrashOnce final : public Metric {
 public:
  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    (void)ctx;
    if (g_crash_step >= 0 && g_calls++ == g_crash_step) throw RunError("simulated crash");
    return {{"crash_once", "", 1.0, Better::lower}};
  }
  static inline int g_calls = 0;
};

// Reports what the engine put in its MetricContext: class_conditional, and the sampling labels'
// count and sum (-1 for none) and guidance scale.
class ContextProbe final : public Metric {
 public:
  Scope scope() const override { return Scope::both; }
  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    const auto& labels = ctx.sampling.labels;
    return {{"probe_class_conditional", "", ctx.class_conditional ? 1.0 : 0.0, Better::higher},
            {"probe_labels", "", labels.defined() ? static_cast<double>(labels.numel()) : -1.0, Better::higher},
            {"probe_label_sum", "", labels.defined() ? labels.sum().item<double>() : -1.0, Better::higher},
            {"probe_guidance", "", ctx.sampling.guidance_scale, Better::higher}};
  }
};

void register_crash_metric() {
  static bool done = false;
  if (done) return;
  done = true;
  test::plugins().register_plugins([](Registrar& r) {
    r.add_metric({"crash_once", "1.0.0", "test metric that throws once", {}},
                 [](const Options&) { return std::make_unique<CrashOnce>(); });
    r.add_metric({"context_probe", "1.0.0", "test metric that reports its context", {}},
                 [](const Options&) { return std::make_unique<ContextProbe>(); });
  });
}

struct Outcome {
  std::vector<LossRecord> losses;
  std::vector<double> values;
  torch::Tensor final_samples;
};

Outcome outcome(RunStore& store, std::int64_t run_id) {
  Outcome o;
  o.losses = store.losses(run_id);
  for (const auto& c : store.checkpoints(run_id)) {
    for (const auto& m : store.metrics(c.id)) o.values.push_back(m.value);
    for (const auto& a : store.artifacts(c.id)) {
      if (a.kind == "samples_npy") o.final_samples = read_npy(a.path);
    }
  }
  return o;
}

SweepGrid tiny_grid(const fs::path& dir, const std::vector<std::string>& overrides = {}) {
  const auto file = dir / "tiny.yaml";
  std::ofstream(file) << kTiny;
  register_crash_metric();
  return load_sweep(file.string(), overrides, test::plugins());
}

}  // namespace

TEST_CASE("a run records checkpoints, losses, metrics and samples, repeatably", "[engine]") {
  const auto dir = test::temp_dir("engine");
  g_crash_step = -1;
  const auto grid = tiny_grid(dir);
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore a((dir / "a.sqlite").string()), b((dir / "b.sqlite").string());
  auto summary = run_sweep(grid, a, test::plugins(), options);
  CHECK(summary.done == 1);
  CHECK(summary.failed == 0);
  options.engine.out_dir = dir / "runs-b";
  run_sweep(grid, b, test::plugins(), options);

  const auto run = a.runs("engine_test").at(0);
  CHECK(run.status == RunStatus::done);
  const auto checkpoints = a.checkpoints(run.id);
  REQUIRE(checkpoints.size() == 2);
  CHECK(checkpoints[0].epoch == 2);
  CHECK(checkpoints[1].step == 16);  // 4 epochs x 512 / 128
  CHECK(a.losses(run.id).size() == 4);
  const auto metrics = a.metrics(checkpoints[1].id);
  std::set<std::string> names;
  for (const auto& m : metrics) names.insert(m.metric + "/" + m.sampler);
  CHECK(names == std::set<std::string>{"test_loss/", "mmd/ddim(steps=10)", "crash_once/ddim(steps=10)"});
  const auto samples = read_npy(a.artifacts(checkpoints[1].id).at(0).path);
  CHECK(samples.sizes() == torch::IntArrayRef({64, 2}));

  // Bit for bit the same in a second store and folder.
  const auto oa = outcome(a, run.id);
  const auto ob = outcome(b, b.runs("engine_test").at(0).id);
  REQUIRE(oa.losses.size() == ob.losses.size());
  for (std::size_t i = 0; i < oa.losses.size(); ++i) CHECK(oa.losses[i].loss == ob.losses[i].loss);
  CHECK(oa.values == ob.values);
  CHECK(torch::equal(oa.final_samples, ob.final_samples));

  // Running the sweep again skips the finished run.
  summary = run_sweep(grid, a, test::plugins(), options);
  CHECK(summary.skipped == 1);
}

TEST_CASE("each metric value records its protocol, and each checkpoint the images it has seen", "[engine]") {
  const auto dir = test::temp_dir("protocol");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  run_sweep(tiny_grid(dir, {"evaluation.common_noise=false"}), store, test::plugins(), options);
  const auto run = store.runs("engine_test").at(0);
  const auto checkpoints = store.checkpoints(run.id);
  REQUIRE(checkpoints.size() == 2);
  CHECK(checkpoints[0].images == 8 * 128);  // 2 epochs of 4 steps of 128 rows
  CHECK(checkpoints[1].images == 16 * 128);
  std::map<std::string, nlohmann::json> protocol;
  for (const auto& m : store.metrics(checkpoints[1].id)) protocol[m.metric] = nlohmann::json::parse(m.protocol_json);
  // test_loss: the whole test split; mmd: the 64 samples against the 128 test points (under its
  // max_points), drawn by DDIM with 10 model calls from the sampler's own noise.
  CHECK(protocol.at("test_loss") == nlohmann::json{{"reference", "test"}, {"reference_size", 128}});
  CHECK(protocol.at("mmd") == nlohmann::json{{"samples", 64},
                                             {"common_noise", false},
                                             {"nfe", 10},
                                             {"reference", "test"},
                                             {"reference_size", 128}});
  CHECK(protocol.at("crash_once") == nlohmann::json{{"samples", 64}, {"common_noise", false}, {"nfe", 10}});
}

TEST_CASE("raising train.epochs continues the recorded run from its last checkpoint, to a straight run's result",
          "[engine]") {
  const auto dir = test::temp_dir("continue");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "straight";
  RunStore straight((dir / "straight.sqlite").string());
  run_sweep(tiny_grid(dir, {"train.epochs=6"}), straight, test::plugins(), options);

  options.engine.out_dir = dir / "continued";
  RunStore store((dir / "continued.sqlite").string());
  run_sweep(tiny_grid(dir, {"train.epochs=3"}), store, test::plugins(), options);
  const auto before = store.runs("engine_test").at(0);
  const auto first = store.checkpoints(before.id);
  REQUIRE(first.size() == 2);  // epochs 2 and 3 (the last)
  const auto first_values = outcome(store, before.id).values;

  // The same file with 6 epochs: no --extend needed, and the run is the same record.
  const auto summary = run_sweep(tiny_grid(dir, {"train.epochs=6"}), store, test::plugins(), options);
  CHECK(summary.done == 1);
  const auto runs = store.runs("engine_test");
  REQUIRE(runs.size() == 1);
  const auto after = runs[0];
  CHECK(after.id == before.id);
  CHECK(after.status == RunStatus::done);
  CHECK(nlohmann::json::parse(after.config_json)["train"]["epochs"] == 6);
  const auto checkpoints = store.checkpoints(after.id);
  std::vector<std::int64_t> epochs;
  for (const auto& c : checkpoints) epochs.push_back(c.epoch);
  CHECK(epochs == std::vector<std::int64_t>{2, 3, 4, 6});
  // Epochs 1-3 were not trained again: their checkpoints, times and values are untouched.
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(checkpoints[i].id == first[i].id);
    CHECK(checkpoints[i].wall_seconds == first[i].wall_seconds);
  }
  const auto all_values = outcome(store, after.id).values;
  CHECK(std::vector<double>(all_values.begin(), all_values.begin() + first_values.size()) == first_values);
  CHECK(checkpoints.back().wall_seconds > first.back().wall_seconds);  // training time goes on

  // Losses and the values of epochs 4 and 6 equal the straight run's, bit for bit.
  const auto s_run = straight.runs("engine_test").at(0);
  const auto s_losses = straight.losses(s_run.id), c_losses = store.losses(after.id);
  REQUIRE(s_losses.size() == 6);
  REQUIRE(c_losses.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) CHECK(s_losses[i].loss == c_losses[i].loss);
  const auto values_at = [](const RunStore& st, std::int64_t run_id, std::int64_t epoch) {
    std::vector<double> v;
    for (const auto& c : st.checkpoints(run_id)) {
      if (c.epoch != epoch) continue;
      for (const auto& m : st.metrics(c.id)) v.push_back(m.value);
    }
    return v;
  };
  for (const std::int64_t epoch : {4, 6}) {
    INFO("epoch " << epoch);
    const auto expected = values_at(straight, s_run.id, epoch);
    CHECK(!expected.empty());
    CHECK(values_at(store, after.id, epoch) == expected);
  }

  // A shorter training is no continuation: the grid differs and is refused as before.
  CHECK_THROWS_AS(run_sweep(tiny_grid(dir, {"train.epochs=4"}), store, test::plugins(), options), InputError);
}

TEST_CASE("a cosine learning-rate decay is not continued: it says why and how to train longer", "[engine]") {
  const auto dir = test::temp_dir("continue-cosine");
  g_crash_step = -1;
  RunStore store((dir / "s.sqlite").string());
  auto grid = tiny_grid(dir, {"train.lr_schedule=cosine"});
  record_sweep(grid, store, test::plugins());
  auto longer = tiny_grid(dir, {"train.lr_schedule=cosine", "train.epochs=8"});
  try {
    record_sweep(longer, store, test::plugins());
    FAIL("a cosine run was continued");
  } catch (const InputError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("train.epochs 4 -> 8") && Catch::Contains("cosine") &&
                         Catch::Contains("--new-sweep"));
    CHECK(what.find('\n') == std::string::npos);
  }
  CHECK(nlohmann::json::parse(store.runs("engine_test").at(0).config_json)["train"]["epochs"] == 4);
  record_sweep(longer, store, test::plugins(), GridChange::new_sweep);
  CHECK(longer.name == "engine_test-2");
}

namespace {
// Trains the tiny grid straight and with a crash after its first checkpoint; both must end equal.
void check_resume(const std::string& name, const std::vector<std::string>& overrides) {
  const auto dir = test::temp_dir(name);
  const auto grid = tiny_grid(dir, overrides);
  SweepOptions options;
  options.engine.out_dir = dir / "straight";
  g_crash_step = -1;
  RunStore straight((dir / "straight.sqlite").string());
  run_sweep(grid, straight, test::plugins(), options);

  options.engine.out_dir = dir / "crashed";
  RunStore crashed((dir / "crashed.sqlite").string());
  CrashOnce::g_calls = 0;
  g_crash_step = 0;  // the first evaluation (epoch 2) throws
  auto summary = run_sweep(grid, crashed, test::plugins(), options);
  CHECK(summary.failed == 1);
  const auto failed = crashed.runs("engine_test").at(0);
  CHECK(failed.status == RunStatus::failed);
  CHECK_THAT(failed.reason, Catch::Contains("simulated crash"));
  CHECK(crashed.checkpoints(failed.id).size() == 1);

  g_crash_step = -1;
  summary = run_sweep(grid, crashed, test::plugins(), options);  // not retried unless asked
  CHECK(summary.failed == 1);
  options.retry_failed = true;
  summary = run_sweep(grid, crashed, test::plugins(), options);
  CHECK(summary.failed == 0);
  // Training time goes on across the resume: checkpoint wall times keep rising, and the run's
  // train_seconds is the last one's (the time to train the model it evaluates).
  const auto resumed = crashed.checkpoints(failed.id);
  REQUIRE(resumed.size() == 2);
  CHECK(resumed[0].wall_seconds > 0);
  CHECK(resumed[1].wall_seconds > resumed[0].wall_seconds);
  CHECK(crashed.run(failed.id)->train_seconds == resumed[1].wall_seconds);
  const auto a = outcome(straight, straight.runs("engine_test").at(0).id);
  const auto b = outcome(crashed, failed.id);
  REQUIRE(a.losses.size() == b.losses.size());
  for (std::size_t i = 0; i < a.losses.size(); ++i) CHECK(a.losses[i].loss == b.losses[i].loss);
  CHECK(a.values == b.values);
  CHECK(torch::equal(a.final_samples, b.final_samples));
}
}  // namespace

TEST_CASE("a run that crashed after a checkpoint resumes to the same result", "[engine]") {
  check_resume("resume", {});
}

TEST_CASE("EMA weights, warm-up and cosine decay resume to the same result too", "[engine]") {
  check_resume("resume-ema", {"train.ema_decay=0.9", "train.lr_schedule=cosine", "train.warmup_steps=3"});
  const auto dir = test::temp_dir("ema-weights");
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  g_crash_step = -1;
  RunStore store((dir / "s.sqlite").string());
  run_sweep(tiny_grid(dir, {"train.ema_decay=0.9"}), store, test::plugins(), options);
  const auto run = store.runs("engine_test").at(0);
  for (const auto& c : store.checkpoints(run.id)) CHECK(c.weights == "ema(0.9)");
  run_sweep(tiny_grid(dir, {"name=plain"}), store, test::plugins(), options);
  for (const auto& c : store.checkpoints(store.runs("plain").at(0).id)) CHECK(c.weights == "model");
}

TEST_CASE("an evaluation-only change reuses the trained checkpoints", "[engine]") {
  const auto dir = test::temp_dir("reuse");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  run_sweep(tiny_grid(dir), store, test::plugins(), options);
  auto grid = tiny_grid(dir, {"name=engine_test_eval", "evaluation.num_samples=32"});
  const auto before = store.runs("engine_test").at(0);
  run_sweep(grid, store, test::plugins(), options);
  const auto after = store.runs("engine_test_eval").at(0);
  CHECK(after.status == RunStatus::done);
  CHECK(after.train_hash == before.train_hash);
  CHECK(after.train_seconds == 0.0);  // nothing was trained again
  const auto c1 = store.checkpoints(before.id), c2 = store.checkpoints(after.id);
  REQUIRE(c1.size() == c2.size());
  CHECK(c1.back().file == c2.back().file);
  CHECK(store.metric_count(c2.back().id) > 0);
}

TEST_CASE("runs that share training write their samples into their own folders", "[engine]") {
  const auto dir = test::temp_dir("own-files");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  // An evaluation-only axis: both runs evaluate the same checkpoints, with 16 and 48 samples.
  run_sweep(tiny_grid(dir, {"sweep.evaluation.num_samples=[16, 48]"}), store, test::plugins(), options);
  const auto runs = store.runs("engine_test");
  REQUIRE(runs.size() == 2);
  REQUIRE(runs[0].train_hash == runs[1].train_hash);
  std::set<std::string> paths;
  for (std::size_t r = 0; r < 2; ++r) {
    const std::int64_t expected = r == 0 ? 16 : 48;
    for (const auto& c : store.checkpoints(runs[r].id)) {
      for (const auto& a : store.artifacts(c.id)) {
        INFO(a.path);
        CHECK(paths.insert(a.path).second);  // no file is another run's
        if (a.kind == "samples_npy") CHECK(read_npy(a.path).size(0) == expected);
      }
    }
  }
  CHECK(paths.size() >= 4);
  // The checkpoints themselves are shared: one training.
  CHECK(store.checkpoints(runs[0].id).back().file == store.checkpoints(runs[1].id).back().file);
}

TEST_CASE("a NaN loss fails the run with its reason and keeps what was recorded", "[engine]") {
  const auto dir = test::temp_dir("nan");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  const auto grid = tiny_grid(dir, {"train.lr=1.0e30", "train.grad_clip=0", "train.epochs=30"});
  const auto summary = run_sweep(grid, store, test::plugins(), options);
  CHECK(summary.failed == 1);
  const auto run = store.runs("engine_test").at(0);
  CHECK(run.status == RunStatus::failed);
  CHECK_THAT(run.reason, Catch::Contains("training loss became") && Catch::Contains("lower train.lr"));
}

TEST_CASE("a changed grid is refused, extends the recorded sweep or becomes a new one", "[engine]") {
  const auto dir = test::temp_dir("grid-change");
  RunStore store((dir / "s.sqlite").string());
  auto grid = tiny_grid(dir);
  record_sweep(grid, store, test::plugins());

  auto changed = tiny_grid(dir, {"train.lr=2.0e-3", "schedule.plugin=cosine_beta"});
  CHECK(describe_grid_change(store.runs("engine_test"), changed) ==
        "1 recorded run not in the file, 1 new; schedule.plugin: \"linear\" -> \"cosine_beta\"; "
        "train.lr: 0.001 -> 0.002");
  CHECK_THROWS_AS(record_sweep(changed, store, test::plugins()), InputError);
  CHECK(store.runs("engine_test").size() == 1);  // nothing recorded by the refusal

  auto seeds = tiny_grid(dir, {"sweep.seed=[5, 6]"});
  CHECK(describe_grid_change(store.runs("engine_test"), seeds) ==
        "0 recorded runs not in the file, 1 new; seed: added 6");
  record_sweep(seeds, store, test::plugins(), GridChange::extend);
  CHECK(store.runs("engine_test").size() == 2);  // seed 5 was the recorded run
  record_sweep(seeds, store, test::plugins());   // now it matches: nothing to refuse
  CHECK(store.runs("engine_test").size() == 2);

  record_sweep(changed, store, test::plugins(), GridChange::new_sweep);
  CHECK(changed.name == "engine_test-2");
  CHECK(changed.runs.at(0).json.at("name") == "engine_test-2");
  CHECK(store.runs("engine_test-2").size() == 1);
  auto other = tiny_grid(dir, {"train.lr=3.0e-3"});
  record_sweep(other, store, test::plugins(), GridChange::new_sweep);
  CHECK(other.name == "engine_test-3");
  CHECK(store.runs("engine_test").size() == 2);
}

TEST_CASE("class-conditional training and guided sampling put class k's samples at component k", "[engine]") {
  const auto dir = test::temp_dir("conditional");
  g_crash_step = -1;
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  const auto grid = tiny_grid(dir, {"model.num_classes=4", "model.hidden=64", "train.epochs=60",
                                    "schedule.beta_end=0.2",
                                    "train.lr=3.0e-3", "train.checkpoint_every=60",
                                    "train.label_dropout=0.2", "evaluation.class_conditional=true", "evaluation.guidance_scale=1.5",
                                    "evaluation.num_samples=400",
                                    "evaluation.metrics=[{plugin: mmd}, {plugin: context_probe}]"});
  REQUIRE(run_sweep(grid, store, test::plugins(), options).failed == 0);
  const auto run = store.runs("engine_test").at(0);
  const auto checkpoint = store.checkpoints(run.id).back();
  const auto samples = read_npy(store.artifacts(checkpoint.id).at(0).path);  // labels 0,1,2,3,0,...
  // gmm2d's means: 5 (cos 2 pi k / 4, sin 2 pi k / 4).
  int right = 0;
  for (std::int64_t k = 0; k < 4; ++k) {
    const auto mean = samples.slice(0, k, samples.size(0), 4).mean(0);
    const auto angle = 2 * M_PI * static_cast<double>(k) / 4;
    const auto target = torch::tensor({5 * std::cos(angle), 5 * std::sin(angle)}, torch::kFloat32);
    const double error = (mean - target).norm().item<double>();
    std::cout << "class " << k << ": sample mean " << mean[0].item<double>() << ", " << mean[1].item<double>()
              << ", " << error << " from its component's mean\n";
    right += error < 1.5 ? 1 : 0;
  }
  CHECK(right == 4);

  // Metrics are told the run is class-conditional, and a sampler's metrics get its labels
  // 0, 1, 2, 3, 0, ... (400 of them, summing to 100 x (0 + 1 + 2 + 3)) and guidance scale.
  std::map<std::string, double> probe;
  for (const auto& m : store.metrics(checkpoint.id)) probe[m.metric + "/" + m.sampler] = m.value;
  CHECK(probe.at("probe_class_conditional/") == 1.0);
  CHECK(probe.at("probe_labels/") == -1.0);  // checkpoint scope: no samples, no sampling labels
  CHECK(probe.at("probe_class_conditional/ddim(steps=10)") == 1.0);
  CHECK(probe.at("probe_labels/ddim(steps=10)") == 400.0);
  CHECK(probe.at("probe_label_sum/ddim(steps=10)") == 600.0);
  CHECK(probe.at("probe_guidance/ddim(steps=10)") == 1.5);
}
