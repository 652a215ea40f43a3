#pragma once
// Small stores built by hand for the report tests: a done run with its axes, a metric value with
// its protocol; and the message of the InputError a report throws.
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "store/run_store.hpp"

namespace difflab::test {

// A done run of `sweep` at grid index `index` with these axes ({"seed": 0, ...}).
inline std::int64_t add_done_run(RunStore& store, std::int64_t sweep, std::int64_t index,
                                 const std::string& axes_json) {
  RunRecord run;
  run.sweep_id = sweep;
  run.grid_index = index;
  run.config_json = "{}";
  run.config_hash = "config" + std::to_string(sweep) + "-" + std::to_string(index);
  run.axes_json = axes_json;
  const auto id = store.add_run(run);
  store.mark_done(id, 1, 1);
  return id;
}

// A checkpoint of `run` at `epoch` and `step` that saw `images` training images (0: unknown).
inline std::int64_t add_checkpoint_at(RunStore& store, std::int64_t run, std::int64_t epoch,
                                      std::int64_t step, std::int64_t images = 0) {
  CheckpointRecord checkpoint{0, run, epoch, step, "", 0};
  checkpoint.images = images;
  return store.add_checkpoint(checkpoint);
}

inline MetricRecord metric_value(std::int64_t checkpoint, const std::string& sampler,
                                 const std::string& metric, double value,
                                 const std::string& protocol_json = "{}", std::int64_t nfe = 0) {
  MetricRecord m{checkpoint, sampler, "{}", metric, "", value};
  m.protocol_json = protocol_json;
  m.nfe = nfe;
  return m;
}

// The message of the InputError that `fn` throws ("" and a failure if it throws none).
template <typename Fn>
std::string input_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("expected an InputError");
  return "";
}

}  // namespace difflab::test
