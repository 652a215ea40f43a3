#pragma once
// Fault injection for the crash-safety tests: DIFFLAB_CRASH_AT=NAME:N makes the process kill
// itself with SIGKILL the Nth time it passes the point NAME, so a test can stop a sweep at an
// exact place (mid-training, between a checkpoint's file and its row, mid-evaluation) and check
// that a re-run repairs everything. Unset, a point costs one branch.
#include <string_view>

namespace difflab {

/// The points the engine marks, in the order a checkpoint passes them.
inline constexpr std::string_view kCrashPoints[] = {
    "train-step",         // after an optimizer step
    "checkpoint-file",    // checkpoint written to its temporary name, not yet renamed
    "checkpoint-record",  // checkpoint file in place, its row not yet committed
    "evaluation",         // samples written, metrics not yet committed
    "run-done",           // everything recorded, the run not yet marked done
};

void crash_point(std::string_view name);

}  // namespace difflab
