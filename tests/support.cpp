#include "support.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <iomanip>
#include <random>
#include <sstream>

#include "run_store.hpp"

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
