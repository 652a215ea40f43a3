// mnist: LeCun's handwritten digits 0..9, from the IDX files in a folder the user names.
#include "difflab/plugin.hpp"
#include "idx_images.hpp"

DIFFLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      {"mnist", "1.0.0",
       "MNIST digits from IDX files (gzipped or not), padded with -1 and scaled to [-1, 1]",
       difflab::idx_image_options(std::nullopt)},
      [](const difflab::Options& o) { return difflab::make_idx_image_dataset("mnist", o); });
}
