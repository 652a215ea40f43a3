// fashion_mnist: Zalando's 10 classes of clothing (Xiao et al. 2017), MNIST's IDX format and
// sizes; by default from Debian's package dataset-fashion-mnist.
#include "difflab/plugin.hpp"
#include "idx_images.hpp"

DIFFLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      {"fashion_mnist", "1.0.0",
       "Fashion-MNIST from IDX files (gzipped or not), padded with -1 and scaled to [-1, 1]",
       difflab::idx_image_options("/usr/share/datasets/fashion-mnist")},
      [](const difflab::Options& o) {
        return difflab::make_idx_image_dataset("fashion_mnist", o);
      });
}
