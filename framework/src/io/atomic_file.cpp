#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "difflab/errors.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = ".tmp-";

// fsync of a file or a folder (opened read-only: Linux flushes the inode either way); 0 or the
// errno of what failed, taken before close() can change it.
int sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  const int error = ::fsync(fd) == 0 || errno == EINVAL ? 0 : errno;  // some file systems cannot sync folders
  ::close(fd);
  return error;
}

}  // namespace

const std::string& this_host() {
  static const std::string* host = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') std::strcpy(name, "localhost");
    auto* text = new std::string(name);
    for (auto& c : *text) {
      if (c == '-' || c == '/' || c == '.') c = '_';
    }
    return text;
  }();
  return *host;
}

// A zombie does not count: a runner killed together with its parent (`timeout -s KILL` signals
// its whole group) stays one until something reaps it, and kill(pid, 0) still succeeds on it.
bool process_alive(std::int64_t pid) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return !fs::exists("/proc/self");  // gone since kill(), unless there is no /proc
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');  // the command name in parentheses may hold anything
  if (paren == std::string::npos || paren + 2 >= text.size()) return true;
  const char state = text[paren + 2];
  return state != 'Z' && state != 'X';
}

std::string temporary_path(const std::string& path) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%08llx", static_cast<unsigned long long>(random() & 0xffffffffull));
  return path + kMarker + this_host() + "-" + std::to_string(::getpid()) + "-" + suffix;
}

void publish_file(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  std::string failure;
  if (const int error = sync_path(tmp, O_RDONLY)) {
    failure = std::string("cannot flush it to disk: ") + std::strerror(error);
  } else {
    fs::rename(tmp, path, ec);
    if (ec) failure = ec.message();
  }
  if (!failure.empty()) {
    fs::remove(tmp, ec);
    throw RunError("cannot write " + path + ": " + failure);
  }
  const auto folder = fs::path(path).parent_path();
  sync_path(folder.empty() ? "." : folder.string(), O_RDONLY | O_DIRECTORY);  // the rename itself
}

int remove_dead_temporaries(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> dead;
  const std::string ours = kMarker + this_host() + "-";
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    const auto name = e.path().filename().string();
    const auto at = name.rfind(ours);
    if (at == std::string::npos) continue;
    // "<pid>-<random>" follows the host.
    const auto rest = name.substr(at + ours.size());
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || dash > 9 ||
        rest.find_first_not_of("0123456789") != dash) continue;
    if (!process_alive(std::stoll(rest.substr(0, dash)))) dead.push_back(e.path());
  }
  int removed = 0;
  for (const auto& p : dead) removed += fs::remove(p, ec) ? 1 : 0;
  return removed;
}

}  // namespace difflab
