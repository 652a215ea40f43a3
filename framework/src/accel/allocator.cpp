#include "accel/allocator.hpp"

#include <malloc.h>

#include <cstdlib>

#include "difflab/errors.hpp"

namespace difflab {
namespace {

// glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX, 4 MiB x sizeof(long)):
// buffers below it come from the heap, which keeps them for the next step.
constexpr int kMmapThreshold = 32 * 1024 * 1024;
// Free memory at the heap's top kept instead of given back with brk: more than a step's buffers.
constexpr int kTrimThreshold = 256 * 1024 * 1024;

}  // namespace

std::string configure_allocator() {
  const char* env = std::getenv("DIFFLAB_MALLOC");
  const std::string choice = env ? env : "";
  if (choice == "system") return "glibc malloc, defaults (DIFFLAB_MALLOC=system)";
  if (!choice.empty() && choice != "tuned") {
    throw InputError("DIFFLAB_MALLOC=" + choice + ": expected tuned (the default) or system");
  }
  // Without this, glibc serves each step's multi-megabyte buffers with fresh mmaps (its dynamic
  // threshold stops growing at 32 MiB only after a free of that size) and trims the heap after
  // frees: millions of page faults over a sampling run, a fifth of its time in the kernel.
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return ok ? "glibc malloc, tuned (mmap threshold 32 MiB, trim threshold 256 MiB; DIFFLAB_MALLOC=system for "
              "the defaults)"
            : "glibc malloc, defaults (mallopt refused the tuning)";
}

}  // namespace difflab
