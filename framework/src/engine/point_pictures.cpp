#include "engine/point_pictures.hpp"

#include <algorithm>
#include <cmath>

#include "io/image_io.hpp"

namespace difflab {
namespace {

constexpr std::int64_t kScatterPixels = 320;
constexpr std::int64_t kGifPixels = 240;
constexpr std::int64_t kDataPoints = 2000;  // enough to show the density, cheap to draw
constexpr int kFrameDelay = 8;              // hundredths of a second
constexpr int kLastFrameDelay = 200;

// Paints a `size` x `size` square centred near each point; pixel y grows downwards.
void draw_points(torch::Tensor& canvas, const torch::Tensor& points, const PlotWindow& w,
                 std::int64_t size, std::uint8_t colour) {
  if (!points.defined() || points.numel() == 0) return;
  const auto xy = points.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const auto* p = xy.data_ptr<double>();
  const std::int64_t n = xy.size(0), pixels = canvas.size(0);
  auto* out = canvas.data_ptr<std::uint8_t>();
  const double scale = static_cast<double>(pixels - 1) / w.size;
  for (std::int64_t i = 0; i < n; ++i) {
    const double x = p[2 * i], y = p[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const double px = (x - w.x_min) * scale, py = (w.y_min + w.size - y) * scale;
    if (px < 0 || py < 0 || px > pixels - 1 || py > pixels - 1) continue;
    const auto cx = static_cast<std::int64_t>(std::lround(px)) - (size - 1) / 2;
    const auto cy = static_cast<std::int64_t>(std::lround(py)) - (size - 1) / 2;
    for (std::int64_t dy = 0; dy < size; ++dy) {
      for (std::int64_t dx = 0; dx < size; ++dx) {
        const auto r = cy + dy, c = cx + dx;
        if (r >= 1 && c >= 1 && r < pixels - 1 && c < pixels - 1) out[r * pixels + c] = colour;
      }
    }
  }
}

}  // namespace

const std::vector<Rgb>& point_palette() {
  static const std::vector<Rgb> palette = {
      Rgb{255, 255, 255}, Rgb{225, 225, 225}, Rgb{165, 165, 165}, Rgb{31, 119, 180},
      Rgb{80, 80, 80},    Rgb{255, 127, 14},  Rgb{0, 0, 0},       Rgb{174, 199, 232}};
  return palette;
}

bool is_point_batch(at::IntArrayRef sizes) {
  return sizes.size() == 2 && sizes[0] > 0 && sizes[1] == 2;
}

PlotWindow plot_window(const torch::Tensor& data, double margin) {
  const auto xy = data.detach().to(torch::kCPU, torch::kDouble);
  const auto finite = xy.isfinite().all(1);
  const auto kept = xy.index({finite});
  if (kept.size(0) == 0) return {};
  const auto low = std::get<0>(kept.min(0)), high = std::get<0>(kept.max(0));
  const double x0 = low[0].item<double>(), x1 = high[0].item<double>();
  const double y0 = low[1].item<double>(), y1 = high[1].item<double>();
  double side = std::max(x1 - x0, y1 - y0);
  if (!(side > 0)) side = 1.0;  // one point, or all on a line: still a usable window
  const double size = side * (1 + 2 * margin);
  return {(x0 + x1) / 2 - size / 2, (y0 + y1) / 2 - size / 2, size};
}

torch::Tensor scatter_indices(const torch::Tensor& data, const torch::Tensor& samples,
                              const PlotWindow& window, std::int64_t pixels) {
  auto canvas = torch::full({pixels, pixels}, static_cast<int64_t>(kBackground), torch::kUInt8);
  const double scale = static_cast<double>(pixels - 1) / window.size;
  const auto zero_x = std::lround((0 - window.x_min) * scale);
  const auto zero_y = std::lround((window.y_min + window.size) * scale);
  if (zero_x > 0 && zero_x < pixels - 1) canvas.select(1, zero_x).fill_(static_cast<std::int64_t>(kAxis));
  if (zero_y > 0 && zero_y < pixels - 1) canvas.select(0, zero_y).fill_(static_cast<std::int64_t>(kAxis));
  draw_points(canvas, data, window, 2, kData);
  draw_points(canvas, samples, window, 3, kSample);
  canvas.select(0, 0).fill_(static_cast<std::int64_t>(kFrame));
  canvas.select(0, pixels - 1).fill_(static_cast<std::int64_t>(kFrame));
  canvas.select(1, 0).fill_(static_cast<std::int64_t>(kFrame));
  canvas.select(1, pixels - 1).fill_(static_cast<std::int64_t>(kFrame));
  return canvas;
}

namespace {

// The point palette, then Tableau's ten category colours (matplotlib's tab10) for classes.
std::vector<Rgb> class_palette() {
  auto palette = point_palette();
  const std::vector<Rgb> classes = {
      Rgb{31, 119, 180}, Rgb{255, 127, 14}, Rgb{44, 160, 44},  Rgb{214, 39, 40},   Rgb{148, 103, 189},
      Rgb{140, 86, 75},  Rgb{227, 119, 194}, Rgb{127, 127, 127}, Rgb{188, 189, 34}, Rgb{23, 190, 207}};
  palette.insert(palette.end(), classes.begin(), classes.end());
  return palette;
}

torch::Tensor to_rgb(const torch::Tensor& indices, const std::vector<Rgb>& palette) {
  auto table = torch::empty({static_cast<std::int64_t>(palette.size()), 3}, torch::kUInt8);
  for (std::size_t i = 0; i < palette.size(); ++i) {
    for (int c = 0; c < 3; ++c) table[i][c] = palette[i][c];
  }
  return table.index_select(0, indices.to(torch::kLong).flatten())
      .view({indices.size(0), indices.size(1), 3});
}

}  // namespace

torch::Tensor palette_rgb(const torch::Tensor& indices) { return to_rgb(indices, point_palette()); }

torch::Tensor class_scatter_rgb(const torch::Tensor& points, const torch::Tensor& labels, const PlotWindow& window,
                                std::int64_t pixels) {
  auto canvas = scatter_indices({}, {}, window, pixels);
  const auto base = static_cast<std::int64_t>(point_palette().size());
  if (!labels.defined()) {
    draw_points(canvas, points, window, 3, kSample);
  } else {
    const auto cpu_labels = labels.to(torch::kCPU, torch::kLong);
    for (std::int64_t k = 0; k < 10; ++k) {
      const auto rows = (cpu_labels.remainder(10) == k).nonzero().flatten();
      draw_points(canvas, points.to(torch::kCPU).index_select(0, rows), window, 3,
                  static_cast<std::uint8_t>(base + k));
    }
  }
  return to_rgb(canvas, class_palette());
}

ReverseRecorder::ReverseRecorder(std::int64_t steps, const torch::Tensor& x_T, std::int64_t frames,
                                 std::int64_t points)
    : points_(points), keep_(std::max<std::int64_t>(steps, 0), false) {
  // As the image strip: on_step(p - 1) follows step p of S; keep p = round(k S / (F - 1)).
  const std::int64_t intervals = std::max<std::int64_t>(frames - 1, 1);
  for (std::int64_t k = 1; k < intervals; ++k) {
    const std::int64_t taken = (2 * k * steps + intervals) / (2 * intervals);
    if (taken >= 1 && taken < steps) keep_[taken - 1] = true;  // the last step is the result
  }
  frames_.push_back(first(x_T));
}

StepCallback ReverseRecorder::callback() {
  return [this](std::int64_t step, const torch::Tensor& x) {
    if (step >= 0 && step < static_cast<std::int64_t>(keep_.size()) && keep_[step]) {
      keep_[step] = false;  // once, should a sampler report a step twice
      frames_.push_back(first(x));
    }
  };
}

std::vector<torch::Tensor> ReverseRecorder::frames(const torch::Tensor& samples) {
  frames_.push_back(first(samples));
  std::vector<torch::Tensor> out;
  for (const auto& f : frames_) out.push_back(f.to(torch::kCPU));
  return out;
}

// A copy on the sampling device: no host synchronisation in the middle of sampling.
torch::Tensor ReverseRecorder::first(const torch::Tensor& x) const {
  return x.slice(0, 0, points_).clone();
}

std::vector<ArtifactRecord> write_point_pictures(const std::filesystem::path& dir,
                                                 const std::string& name,
                                                 const torch::Tensor& data,
                                                 const torch::Tensor& samples,
                                                 ReverseRecorder* recorder,
                                                 std::int64_t checkpoint_id,
                                                 const std::string& sampler) {
  const auto shown = data.slice(0, 0, kDataPoints).to(torch::kCPU);
  const auto window = plot_window(shown);
  std::vector<ArtifactRecord> artifacts;
  const auto png = (dir / ("scatter-" + name + ".png")).string();
  write_png(png, palette_rgb(scatter_indices(shown, samples, window, kScatterPixels)));
  artifacts.push_back({checkpoint_id, sampler, "scatter_png", png});
  if (recorder) {
    GifAnimation gif;
    gif.palette = point_palette();
    std::vector<torch::Tensor> pictures;
    for (const auto& f : recorder->frames(samples)) {
      pictures.push_back(scatter_indices(shown, f, window, kGifPixels));
      gif.delays.push_back(kFrameDelay);
    }
    gif.delays.back() = kLastFrameDelay;
    gif.frames = torch::stack(pictures);
    const auto path = (dir / ("reverse-" + name + ".gif")).string();
    write_gif(path, gif);
    artifacts.push_back({checkpoint_id, sampler, "reverse_gif", path});
  }
  return artifacts;
}

}  // namespace difflab
