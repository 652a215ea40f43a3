#pragma once
// Fault injection for the crash-safety tests: DIFFLAB_CRASH_AT=NAME:N makes the process kill
// itself with SIGKILL the Nth time it passes the point NAME, so a test can stop a sweep at an
// exact place (mid-training, between a checkpoint's file and its row, mid-evaluation) and check
// that a re-run repairs everything. NAME:N@I counts only while the run of grid index I executes
// (one task of a parallel or Slurm sweep). Unset, a point costs one branch.
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

/// The grid index of the run this process executes now (-1: none), for NAME:N@I.
void set_crash_run(long index);

}  // namespace difflab
