#pragma once
// Pictures of 2-D point samples: a scatter of samples over the data (PNG) per checkpoint and
// sampler, and an animation of the reverse process (GIF) for the first sampler.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/sampler.hpp"
#include "io/gif_io.hpp"
#include "store/run_store.hpp"

namespace difflab {

/// Palette indices of the pictures (kPointPalette holds their colours).
enum PointColour : std::uint8_t {
  kBackground = 0,  // white
  kAxis = 1,        // the lines x = 0 and y = 0, light grey
  kData = 2,        // data points, grey
  kSample = 3,      // samples, blue
  kFrame = 4,       // the picture's border, dark grey
};
/// Eight colours (a GIF palette is a power of two): the five above, then three spare.
const std::vector<Rgb>& point_palette();

/// The square window every picture of a run shares, fixed by the data: the data's bounding box
/// centred, its longer side plus `margin` of it on each side, so samples at the data's edge show.
struct PlotWindow {
  double x_min = -1, y_min = -1, size = 2;
};
PlotWindow plot_window(const torch::Tensor& data, double margin = 0.08);

/// Whether samples of this shape ([N, 2]) are 2-D points these pictures can draw.
bool is_point_batch(at::IntArrayRef sizes);

/// A `pixels` x `pixels` picture of palette indices: light axes, a dark border, `data` as grey
/// 2x2 dots and `samples` as blue 3x3 dots drawn over them (y grows upwards). Points outside
/// the window or not finite are left out. Either set may be undefined.
torch::Tensor scatter_indices(const torch::Tensor& data, const torch::Tensor& samples,
                              const PlotWindow& window, std::int64_t pixels);

/// A `pixels` x `pixels` RGB picture [H, W, 3] (uint8) of 2-D `points` as 3x3 dots, each in its
/// class's colour (`labels` int64 [N], ten colours repeating; all blue when undefined), with the
/// axes and border of scatter_indices.
torch::Tensor class_scatter_rgb(const torch::Tensor& points, const torch::Tensor& labels, const PlotWindow& window,
                                std::int64_t pixels);

/// Palette indices [H, W] to a uint8 RGB image [H, W, 3] for write_png.
torch::Tensor palette_rgb(const torch::Tensor& indices);

/// Keeps the first `points` samples' states after about `frames` evenly spaced reverse steps
/// (x_T first, the final samples last) for the animation. A kept state copies those points only.
class ReverseRecorder {
 public:
  static constexpr std::int64_t kFrames = 30;
  static constexpr std::int64_t kPoints = 500;

  ReverseRecorder(std::int64_t steps, const torch::Tensor& x_T, std::int64_t frames = kFrames,
                  std::int64_t points = kPoints);
  StepCallback callback();
  /// The kept states with the final samples appended, each [points, 2] on the CPU.
  std::vector<torch::Tensor> frames(const torch::Tensor& samples);

 private:
  torch::Tensor first(const torch::Tensor& x) const;

  std::int64_t points_;
  std::vector<bool> keep_;
  std::vector<torch::Tensor> frames_;
};

/// Writes `scatter-<name>.png` (320 px) in `dir` and, given a recorder, `reverse-<name>.gif`
/// (240 px, 80 ms a frame, the last held 2 s, looping), both over the first 2000 rows of `data`,
/// and returns their artifact rows (kinds scatter_png and reverse_gif).
std::vector<ArtifactRecord> write_point_pictures(const std::filesystem::path& dir,
                                                 const std::string& name,
                                                 const torch::Tensor& data,
                                                 const torch::Tensor& samples,
                                                 ReverseRecorder* recorder,
                                                 std::int64_t checkpoint_id,
                                                 const std::string& sampler);

}  // namespace difflab
