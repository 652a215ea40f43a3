#include "io/image_io.hpp"

#include <cstring>
#include <filesystem>
#include <system_error>

#include <png.h>
#include <torch/torch.h>

#include "io/atomic_file.hpp"
#include "difflab/errors.hpp"

namespace difflab {
namespace {

png_image blank_image() {
  png_image image;
  std::memset(&image, 0, sizeof image);  // libpng's simplified API asks for a zeroed struct
  image.version = PNG_IMAGE_VERSION;
  return image;
}

}  // namespace

bool is_image_batch(at::IntArrayRef sizes) {
  return sizes.size() == 4 && (sizes[1] == 1 || sizes[1] == 3) && sizes[2] > 0 && sizes[3] > 0;
}

void write_png(const std::string& path, const at::Tensor& image) {
  const bool grey = image.dim() == 2 || (image.dim() == 3 && image.size(2) == 1);
  const bool rgb = image.dim() == 3 && image.size(2) == 3;
  if (image.scalar_type() != torch::kUInt8 || !(grey || rgb) || image.size(0) < 1 ||
      image.size(1) < 1) {
    throw RunError("cannot write " + path +
                   ": a PNG takes a uint8 [H, W] or [H, W, 3] image, got " +
                   std::string(c10::toString(image.scalar_type())) + " " + c10::str(image.sizes()));
  }
  const auto pixels = image.detach().to(torch::kCPU).contiguous();
  auto png = blank_image();
  png.width = static_cast<png_uint_32>(pixels.size(1));
  png.height = static_cast<png_uint_32>(pixels.size(0));
  png.format = grey ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const auto tmp = temporary_path(path);
  const int ok =
      png_image_write_to_file(&png, tmp.c_str(), 0, pixels.data_ptr<std::uint8_t>(), 0, nullptr);
  const std::string message = png.message;
  png_image_free(&png);
  std::error_code ec;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    throw RunError("cannot write " + path + ": " + message);
  }
  publish_file(tmp, path);
}

at::Tensor read_png(const std::string& path) {
  auto png = blank_image();
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    throw InputError(path + ": cannot read as a PNG (" + png.message + ")");
  }
  const bool colour = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const std::int64_t height = png.height, width = png.width;
  auto out = colour ? torch::empty({height, width, 3}, torch::kUInt8)
                    : torch::empty({height, width}, torch::kUInt8);
  if (!png_image_finish_read(&png, nullptr, out.data_ptr<std::uint8_t>(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw InputError(path + ": cannot read as a PNG (" + message + ")");
  }
  return out;
}

at::Tensor image_grid(const at::Tensor& samples, std::int64_t columns, std::int64_t padding,
                      std::uint8_t pad_value) {
  if (!is_image_batch(samples.sizes()) || samples.size(0) < 1) {
    throw RunError("image_grid: expected a non-empty batch [N, C, H, W] with C = 1 or 3, got " +
                   c10::str(samples.sizes()));
  }
  if (columns < 1 || padding < 0) {
    throw RunError("image_grid: columns must be >= 1 and padding >= 0, got " +
                   std::to_string(columns) + " and " + std::to_string(padding));
  }
  const std::int64_t n = samples.size(0), c = samples.size(1), h = samples.size(2),
                     w = samples.size(3);
  const std::int64_t cols = std::min(columns, n);
  const std::int64_t rows = (n + cols - 1) / cols;
  // [-1, 1] -> 0..255; round half to even, as torch rounds.
  const auto pixels =
      ((torch::nan_to_num(samples.detach().to(torch::kCPU, torch::kFloat32), 0.0).clamp(-1.0, 1.0) +
        1.0) *
       127.5)
          .round()
          .to(torch::kUInt8)
          .permute({0, 2, 3, 1});  // [N, H, W, C]
  auto grid = torch::full({rows * (h + padding) + padding, cols * (w + padding) + padding, c},
                          static_cast<int64_t>(pad_value), torch::kUInt8);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t top = padding + (i / cols) * (h + padding);
    const std::int64_t left = padding + (i % cols) * (w + padding);
    grid.slice(0, top, top + h).slice(1, left, left + w).copy_(pixels[i]);
  }
  return c == 1 ? grid.squeeze(2) : grid;
}

}  // namespace difflab
