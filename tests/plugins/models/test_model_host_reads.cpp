// Nothing inside a captured region synchronises with the host (cuda_graphs.hpp): a model's forward
// runs inside the training step's and the samplers' CUDA graph captures, where reading a tensor's
// value back to the host (.item(), a copy to the CPU, data_ptr, ...) makes the capture fail. A CPU
// LibTorch has no guard that throws on a synchronisation, so the first case reads the in-tree
// models' sources and names each line that reads a value back; on a CUDA machine the forward
// passes also run under torch's sync debug mode "error". Label ranges are the engine's to check.
#if __has_include(<cuda_runtime_api.h>) && __has_include(<c10/cuda/CUDAFunctions.h>)
#include <c10/cuda/CUDAFunctions.h>
#define DIFFLAB_TEST_SYNC_DEBUG 1
#else
#define DIFFLAB_TEST_SYNC_DEBUG 0
#endif

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

// What reads a tensor's values or memory back to the host, or makes the host wait for them.
const std::vector<std::pair<std::regex, std::string>>& host_reads() {
  static const std::vector<std::pair<std::regex, std::string>> reads = {
      {std::regex(R"(\bitem\s*[<(])"), ".item() copies a value to the host"},
      {std::regex(R"(\b_local_scalar_dense\b)"), "_local_scalar_dense copies a value to the host"},
      {std::regex(R"(\.cpu\s*\()"), ".cpu() copies to the host"},
      {std::regex(R"(\bkCPU\b)"), "a CPU device: a copy to the host"},
      {std::regex(R"(\btolist\b)"), "tolist copies to the host"},
      {std::regex(R"(\bdata_ptr\b)"), "data_ptr reads the tensor's memory on the host"},
      {std::regex(R"(\baccessor\s*<)"), "an accessor reads the tensor's memory on the host"},
      {std::regex(R"(\bnonzero\b|\bmasked_select\b|\bunique\b)"),
       "the result's size depends on the values, so the host waits for them"},
      {std::regex(R"(\bequal\s*\(|\ballclose\b|\bis_nonzero\b)"),
       "a bool of the tensor's values is read on the host"},
  };
  return reads;
}

// "NAME:LINE: why: the line" for each line of `source` (its // comments left out) that reads back.
std::vector<std::string> find_host_reads(const std::string& source, const std::string& name) {
  std::vector<std::string> found;
  std::istringstream lines(source);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const auto code = line.substr(0, line.find("//"));
    for (const auto& [pattern, why] : host_reads()) {
      if (!std::regex_search(code, pattern)) continue;
      const auto start = code.find_first_not_of(' ');
      found.push_back(name + ":" + std::to_string(number) + ": " + why + ": " +
                      code.substr(start == std::string::npos ? 0 : start));
    }
  }
  return found;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::shared_ptr<Denoiser> make_model(const std::string& name,
                                     std::map<std::string, OptionValue> given) {
  auto& registry = test::plugins();
  return registry.make_model(
      name,
      resolve_options(registry.get(PluginKind::model, name).info.options, std::move(given), name));
}

std::map<std::string, OptionValue> tiny_unet(std::map<std::string, OptionValue> more = {}) {
  std::map<std::string, OptionValue> given{{"image_size", std::int64_t{16}},
                                           {"base_channels", std::int64_t{8}},
                                           {"channel_mult", std::vector<std::int64_t>{1, 2}},
                                           {"blocks_per_level", std::int64_t{1}},
                                           {"attention_resolutions", std::vector<std::int64_t>{8}},
                                           {"groups", std::int64_t{4}}};
  for (auto& [key, value] : more) given[key] = value;
  return given;
}

}  // namespace

TEST_CASE("no in-tree model reads a tensor value back to the host", "[models][graphs]") {
  const auto dir = fs::path(DIFFLAB_SOURCE_DIR) / "plugins" / "models";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension();
    if (ext == ".cpp" || ext == ".hpp") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.filename().string());
  // Both models are read: a moved folder cannot pass by reading nothing.
  CHECK(std::count(names.begin(), names.end(), "mlp.cpp") == 1);
  CHECK(std::count(names.begin(), names.end(), "unet.cpp") == 1);
  for (const auto& f : files) {
    for (const auto& read :
         find_host_reads(read_file(f), "plugins/models/" + f.filename().string())) {
      FAIL_CHECK(read << " (forward runs inside CUDA graph captures: check values where the data "
                         "is loaded, as DenoisingTask checks labels)");
    }
  }
}

TEST_CASE("the host-read scan finds the label check the models' forward used to make",
          "[models][graphs]") {
  const auto found = find_host_reads(
      "    if (labels.numel() > 0 && labels.max().item<std::int64_t>() >= num_classes_) {\n"
      "    // a comment may say .item() and data_ptr\n"
      "    const auto y = x.to(torch::kCPU);  // and so may one after the code: .cpu()\n"
      "    auto p = std::make_unique<Block>(unique_id);\n",
      "old.cpp");
  REQUIRE(found.size() == 2);
  CHECK_THAT(found[0],
             Catch::StartsWith("old.cpp:1: .item() copies a value to the host: if (labels"));
  CHECK_THAT(found[1], Catch::StartsWith("old.cpp:3: a CPU device"));
}

TEST_CASE("an out-of-range class label is refused without a host read", "[models]") {
  torch::manual_seed(0);
  const auto t = torch::full({3}, 5.0);
  const Conditioning beyond{torch::tensor({0, 1, 4}, torch::kLong)};
  const Conditioning last_row{
      torch::tensor({0, 3, 1}, torch::kLong)};  // the "no label" row's index
  auto mlp = make_model("mlp", {{"hidden", std::int64_t{16}}, {"num_classes", std::int64_t{3}}});
  const auto points = torch::randn({3, 2});
  CHECK_THROWS_AS(mlp->forward(points, t, beyond), InputError);
  CHECK_THROWS_WITH(mlp->forward(points, t, last_row),
                    Catch::Contains("out of range for num_classes = 3") && Catch::Contains("0..2"));
  // label_dropout could turn any label into "no label": an invalid one is refused all the same.
  auto unet =
      make_model("unet", tiny_unet({{"num_classes", std::int64_t{3}}, {"label_dropout", 1.0}}));
  unet->train();
  const auto images = torch::randn({3, 1, 16, 16});
  CHECK_THROWS_WITH(unet->forward(images, t, last_row), Catch::Contains("num_classes = 3"));
  CHECK_NOTHROW(unet->forward(images, t, {torch::tensor({0, 2, -1}, torch::kLong)}));
}

TEST_CASE("validation refuses a dataset whose labels the model's num_classes cannot take",
          "[models][cli]") {
  const auto dir = test::temp_dir("labels-range");
  const std::string sweep =
      std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";
  std::string out;
  // gmm2d's 8 components are its classes 0..7; the model has a table for 3.
  const int code = test::run_command(
      test::runner_path() + " sweep " + sweep + " --db " + (dir / "runs.sqlite").string() +
          " --out " + (dir / "runs").string() +
          " --threads 1 -q --set model.num_classes=3 --set 'sweep.schedule.plugin=[linear]'",
      &out);
  CHECK(code == 2);  // refused when the sweep is validated, before anything is recorded
  CHECK_THAT(out, Catch::Contains("has num_classes = 3") &&
                      Catch::Contains("class labels up to 7") &&
                      Catch::Contains("num_classes to at least 8"));
  CHECK(test::run_command(test::runner_path() + " validate " + sweep + " --set model.num_classes=3", &out) == 2);
  CHECK_THAT(out, Catch::Contains("class labels up to 7") && Catch::Contains("num_classes to at least 8"));
}

#if DIFFLAB_TEST_SYNC_DEBUG
namespace {
// torch's sync debug mode "error" for a scope: a synchronising CUDA call throws.
class SyncIsError {
 public:
  SyncIsError() : before_(c10::cuda::warning_state().get_sync_debug_mode()) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  }
  ~SyncIsError() { c10::cuda::warning_state().set_sync_debug_mode(before_); }

 private:
  c10::cuda::SyncDebugMode before_;
};
}  // namespace

TEST_CASE("on CUDA the in-tree models' forward passes do not synchronise with the host",
          "[models][graphs]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: only the source scan checks the models");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  torch::manual_seed(0);
  auto mlp = make_model("mlp", {{"hidden", std::int64_t{16}}, {"num_classes", std::int64_t{3}}});
  auto unet =
      make_model("unet", tiny_unet({{"num_classes", std::int64_t{3}}, {"label_dropout", 0.5}}));
  mlp->to(cuda);
  unet->to(cuda);
  const auto t = torch::full({4}, 5.0, torch::TensorOptions().device(cuda));
  const Conditioning labels{torch::tensor({0, 1, 2, -1}, torch::kLong).to(cuda)};
  const auto points = torch::randn({4, 2}, torch::TensorOptions().device(cuda));
  const auto images = torch::randn({4, 1, 16, 16}, torch::TensorOptions().device(cuda));
  for (const bool training : {true, false}) {
    mlp->train(training);
    unet->train(training);
    SyncIsError guard;
    CHECK_NOTHROW(mlp->forward(points, t, {}));
    CHECK_NOTHROW(mlp->forward(points, t, labels));
    CHECK_NOTHROW(unet->forward(images, t, {}));
    CHECK_NOTHROW(unet->forward(images, t, labels));
  }
}
#endif
