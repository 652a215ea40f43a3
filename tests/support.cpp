#include "support.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <iomanip>
#include <random>
#include <sstream>

#include "store/run_store.hpp"

namespace difflab::test {

Registry& plugins() {
  static Registry& registry = [] () -> Registry& {
    auto& r = Registry::instance();
    r.load_directory(DIFFLAB_BINARY_DIR "/plugins");
    return r;
  }();
  return registry;
}

std::filesystem::path temp_dir(const std::string& name) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("difflab-test-" + name + "-" + std::to_string(rd()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string runner_path() { return DIFFLAB_BINARY_DIR "/runner"; }

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buffer{};
  std::string text;
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) text.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void make_big_store(const std::string& path, const BigStore& shape) {
  RunStore store(path);
  store.transaction([&] {
    const auto sweep = store.add_sweep("big", "big.yaml", "name: big\n");
    std::vector<LossRecord> losses;
    for (int e = 1; e <= shape.losses; ++e) losses.push_back({e, e, 1.0 / e, ""});
    for (int r = 0; r < shape.runs; ++r) {
      RunRecord run;
      run.sweep_id = sweep;
      run.grid_index = r;
      run.config_json = "{}";
      run.config_hash = "hash" + std::to_string(r);
      run.train_hash = run.config_hash;
      run.axes_json = R"({"schedule.plugin":"linear","seed":)" + std::to_string(r) + "}";
      run.seed = r;
      run.id = store.add_run(run);
      store.add_losses(run.id, losses);
      for (int k = 1; k <= shape.checkpoints; ++k) {
        const auto id = store.add_checkpoint({0, run.id, 10 * k, 100 * k, "runs/ck.pt", double(k), "model"});
        store.add_metric({id, "", "{}", "test_loss", "mse(prediction=epsilon,repeats=4,timesteps=all)", 1.0 / k});
        for (const auto& sampler : shape.samplers) {
          const std::string params = R"({"plugin":")" + sampler.substr(0, sampler.find('(')) + "\"}";
          store.add_metric({id, sampler, params, "mmd", "rbf(bandwidths=0.1,0.2,0.5,1,2,5)", 0.01 * r / k});
          store.add_metric({id, sampler, params, "wasserstein", "exact", 0.1 + double(r % 7) / k});
        }
      }
      store.mark_done(run.id, 10.0, 5.0);
    }
  });
}

std::vector<std::string> recorded_rows(const std::filesystem::path& db) {
  namespace fs = std::filesystem;
  const auto exact = [](double v) {
    std::ostringstream out;
    out << std::setprecision(17) << v;
    return out.str();
  };
  const RunStore store(db.string(), RunStore::Access::read_only);
  std::vector<std::string> rows;
  for (const auto& run : store.runs()) {
    const auto& h = run.config_hash;
    rows.push_back("run " + h + " " + std::to_string(run.grid_index) + " " + run_status_name(run.status));
    for (const auto& l : store.losses(run.id)) rows.push_back("loss " + h + " " + std::to_string(l.step) + " " + exact(l.loss));
    for (const auto& c : store.checkpoints(run.id)) {
      const auto at = h + " " + std::to_string(c.step);
      rows.push_back("checkpoint " + at + " " + std::to_string(c.epoch) + " " + fs::path(c.file).filename().string());
      for (const auto& m : store.metrics(c.id)) {
        rows.push_back("metric " + at + " " + m.sampler + " " + m.metric + " " + m.variant + " " + exact(m.value));
      }
      for (const auto& a : store.artifacts(c.id)) {
        rows.push_back("artifact " + at + " " + a.sampler + " " + a.kind + " " + fs::path(a.path).filename().string());
      }
    }
  }
  return rows;
}

}  // namespace difflab::test
