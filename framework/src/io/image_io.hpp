#pragma once
// PNG pictures of samples through libpng's simplified API: grids of samples, denoising strips.
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace difflab {

/// Writes a uint8 image, [H, W] (grey) or [H, W, 3] (RGB), as an 8-bit PNG. The file is written
/// under `path` + ".tmp" and renamed, so a killed process never leaves a partial `path`.
/// RunError naming `path` when the image has another shape or type, or the file cannot be written.
void write_png(const std::string& path, const at::Tensor& image);

/// Reads a PNG as uint8 [H, W] when it is grey, [H, W, 3] when it has colour (alpha is dropped
/// by compositing onto black). InputError naming `path` when it is missing or not a PNG.
at::Tensor read_png(const std::string& path);

/// Tiles `samples` [N, C, H, W] (C = 1 or 3, values in [-1, 1]) into one uint8 picture,
/// `columns` per row (fewer when N is smaller), row-major. Every cell is surrounded by `padding`
/// pixels of `pad_value` (also around the border; empty cells of the last row are pad_value
/// too), so the picture is rows (H + padding) + padding by cols (W + padding) + padding.
/// Values are clamped to [-1, 1] (NaN reads as 0) and mapped to round((x + 1) 127.5).
/// Returns [height, width] for C = 1 and [height, width, 3] for C = 3, on the CPU.
at::Tensor image_grid(const at::Tensor& samples, std::int64_t columns, std::int64_t padding = 2,
                      std::uint8_t pad_value = 255);

/// Whether samples of this shape ([N, C, H, W], C = 1 or 3) are pictures image_grid can tile.
bool is_image_batch(at::IntArrayRef sizes);

}  // namespace difflab
