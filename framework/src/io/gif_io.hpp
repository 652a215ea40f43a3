#pragma once
// Animated GIFs through giflib: palette frames in, one looping file out (and back, for tests).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace difflab {

using Rgb = std::array<std::uint8_t, 3>;

struct GifAnimation {
  at::Tensor frames;                 // uint8 [F, H, W] of palette indices
  std::vector<Rgb> palette;          // 2, 4, ..., 256 colours
  std::vector<int> delays;           // per frame, in hundredths of a second
  int loops = 0;                     // NETSCAPE2.0 loop count, 0 = forever
};

/// Writes `gif` as a GIF89a under `path` + ".tmp", then renames it into place (a killed process
/// never leaves a partial `path`). RunError naming `path` when the frames are not uint8
/// [F, H, W], an index is outside the palette, the palette size is not a power of two in 2..256,
/// or giflib cannot write the file.
void write_gif(const std::string& path, const GifAnimation& gif);

/// Reads every frame of a GIF written by write_gif (full-size frames, one global palette).
/// InputError naming `path` when it is missing or not such a GIF.
GifAnimation read_gif(const std::string& path);

}  // namespace difflab
