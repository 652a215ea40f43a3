#include "training/crash_point.hpp"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace difflab {
namespace {

struct CrashPlan {
  std::string name;  // empty: no crash planned
  long count = 0;
  long run = -1;  // -1: any run
  std::atomic<long> seen{0};
  std::atomic<long> current_run{-1};
};

CrashPlan& plan() {
  static CrashPlan* p = [] {
    auto* out = new CrashPlan;
    const char* env = std::getenv("DIFFLAB_CRASH_AT");
    if (env == nullptr) return out;
    std::string text = env;
    if (const auto at = text.rfind('@'); at != std::string::npos) {
      out->run = std::strtol(text.c_str() + at + 1, nullptr, 10);
      text = text.substr(0, at);
    }
    const auto colon = text.rfind(':');
    out->name = text.substr(0, colon);
    out->count = colon == std::string::npos ? 1 : std::strtol(text.c_str() + colon + 1, nullptr, 10);
    return out;
  }();
  return *p;
}

}  // namespace

void crash_point(std::string_view name) {
  auto& p = plan();
  if (p.name.empty() || p.name != name) return;
  if (p.run >= 0 && p.current_run != p.run) return;
  if (++p.seen == p.count) ::raise(SIGKILL);
}

void set_crash_run(long index) { plan().current_run = index; }

}  // namespace difflab
