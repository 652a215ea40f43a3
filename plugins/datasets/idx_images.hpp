#pragma once
// The MNIST-format image datasets (mnist, fashion_mnist): LeCun's IDX files, gzipped or not, as
// float32 [N, 1, S, S] images in [-1, 1] padded with -1, and int64 labels 0..9. Compiled once into
// a static library that both plugin libraries link.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "difflab/dataset.hpp"
#include "difflab/options.hpp"

namespace difflab {

/// The options of an IDX image dataset; `root` is required when `default_root` is empty.
std::vector<OptionSpec> idx_image_options(std::optional<std::string> default_root);

/// The dataset `plugin` (its name, for messages) over the IDX files in the folder `root`:
/// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
/// t10k-labels-idx1-ubyte, each optionally with `.gz`. Throws InputError naming the missing file.
std::unique_ptr<Dataset> make_idx_image_dataset(const std::string& plugin, const Options& o);

}  // namespace difflab
