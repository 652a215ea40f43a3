#pragma once
// The C allocator's set-up: glibc's malloc tuned at start-up so that sampling and training, which
// free and allocate the same large buffers every step, stop returning them to the kernel and
// faulting them in again (docs/performance.md#the-allocator).
#include <string>

namespace difflab {

/// Reads DIFFLAB_MALLOC once: unset, "" or "tuned" raise glibc's mmap threshold to its maximum
/// (32 MiB) and its trim threshold to 256 MiB (mallopt); "system" leaves glibc's defaults.
/// Returns what is in use, for logs and the bench ("glibc malloc, tuned (...)"). InputError for
/// any other value.
std::string configure_allocator();

}  // namespace difflab
