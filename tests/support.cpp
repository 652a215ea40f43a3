#include "support.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <random>

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

}  // namespace difflab::test
