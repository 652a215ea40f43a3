#include "io/gif_io.hpp"

#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include <gif_lib.h>
#include <torch/torch.h>

#include "io/atomic_file.hpp"
#include "difflab/errors.hpp"

namespace difflab {
namespace {

std::string gif_error(int code) {
  const char* text = GifErrorString(code);
  return text ? text : "error " + std::to_string(code);
}

struct ColorMapDeleter {
  void operator()(ColorMapObject* map) const { GifFreeMapObject(map); }
};

// Closes a giflib writer exactly once; the error of an early close is what callers report.
struct GifWriter {
  GifFileType* file = nullptr;
  ~GifWriter() {
    int error = 0;
    if (file) EGifCloseFile(file, &error);
  }
};

void check(int status, GifFileType* file, const std::string& path) {
  if (status == GIF_ERROR) {
    throw RunError("cannot write " + path + ": giflib: " + gif_error(file->Error));
  }
}

}  // namespace

void write_gif(const std::string& path, const GifAnimation& gif) {
  const auto& frames = gif.frames;
  const auto colours = static_cast<int>(gif.palette.size());
  if (frames.scalar_type() != torch::kUInt8 || frames.dim() != 3 || frames.size(0) < 1 ||
      frames.size(1) < 1 || frames.size(2) < 1 || frames.size(1) > 65535 || frames.size(2) > 65535) {
    throw RunError("cannot write " + path + ": a GIF takes uint8 [F, H, W] palette indices, got " +
                   std::string(c10::toString(frames.scalar_type())) + " " + c10::str(frames.sizes()));
  }
  if (colours < 2 || colours > 256 || (colours & (colours - 1)) != 0) {
    throw RunError("cannot write " + path + ": the palette must hold 2, 4, ..., 256 colours, not " +
                   std::to_string(colours));
  }
  const auto pixels = frames.detach().to(torch::kCPU).contiguous();
  if (pixels.max().item<int>() >= colours) {
    throw RunError("cannot write " + path + ": a pixel indexes past the " +
                   std::to_string(colours) + "-colour palette");
  }
  std::vector<GifColorType> entries;
  for (const auto& c : gif.palette) entries.push_back({c[0], c[1], c[2]});
  std::unique_ptr<ColorMapObject, ColorMapDeleter> map(GifMakeMapObject(colours, entries.data()));
  if (!map) throw RunError("cannot write " + path + ": giflib could not make the palette");

  const auto tmp = temporary_path(path);
  const int height = static_cast<int>(pixels.size(1)), width = static_cast<int>(pixels.size(2));
  try {
    GifWriter writer;
    int error = 0;
    writer.file = EGifOpenFileName(tmp.c_str(), false, &error);
    if (!writer.file) throw RunError("cannot write " + path + ": giflib: " + gif_error(error));
    GifFileType* file = writer.file;
    EGifSetGifVersion(file, true);  // GIF89a: delays and looping need extensions
    check(EGifPutScreenDesc(file, width, height, map->BitsPerPixel, 0, map.get()), file, path);
    // NETSCAPE2.0 application extension: sub-block 1 holds the loop count (little endian).
    GifByteType loop[3] = {1, static_cast<GifByteType>(gif.loops & 0xff),
                           static_cast<GifByteType>((gif.loops >> 8) & 0xff)};
    check(EGifPutExtensionLeader(file, APPLICATION_EXT_FUNC_CODE), file, path);
    check(EGifPutExtensionBlock(file, 11, "NETSCAPE2.0"), file, path);
    check(EGifPutExtensionBlock(file, 3, loop), file, path);
    check(EGifPutExtensionTrailer(file), file, path);
    for (std::int64_t f = 0; f < pixels.size(0); ++f) {
      GraphicsControlBlock gcb{};
      gcb.DisposalMode = DISPOSE_DO_NOT;
      gcb.UserInputFlag = false;
      gcb.DelayTime = f < static_cast<std::int64_t>(gif.delays.size()) ? gif.delays[f] : 10;
      gcb.TransparentColor = NO_TRANSPARENT_COLOR;
      GifByteType extension[4];
      EGifGCBToExtension(&gcb, extension);
      check(EGifPutExtension(file, GRAPHICS_EXT_FUNC_CODE, 4, extension), file, path);
      check(EGifPutImageDesc(file, 0, 0, width, height, false, nullptr), file, path);
      auto* row = pixels[f].data_ptr<std::uint8_t>();
      for (int y = 0; y < height; ++y, row += width) {
        check(EGifPutLine(file, row, width), file, path);
      }
    }
    writer.file = nullptr;
    if (EGifCloseFile(file, &error) == GIF_ERROR) {
      throw RunError("cannot write " + path + ": giflib: " + gif_error(error));
    }
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  publish_file(tmp, path);
}

GifAnimation read_gif(const std::string& path) {
  int error = 0;
  GifFileType* file = DGifOpenFileName(path.c_str(), &error);
  if (!file) throw InputError(path + ": cannot read as a GIF (" + gif_error(error) + ")");
  struct Closer {
    GifFileType* file;
    ~Closer() {
      int ignored = 0;
      DGifCloseFile(file, &ignored);
    }
  } closer{file};
  if (DGifSlurp(file) == GIF_ERROR) {
    throw InputError(path + ": cannot read as a GIF (" + gif_error(file->Error) + ")");
  }
  if (!file->SColorMap || file->ImageCount < 1) {
    throw InputError(path + ": a GIF without a global palette or frames");
  }
  GifAnimation gif;
  for (int i = 0; i < file->SColorMap->ColorCount; ++i) {
    const auto& c = file->SColorMap->Colors[i];
    gif.palette.push_back({c.Red, c.Green, c.Blue});
  }
  const std::int64_t height = file->SHeight, width = file->SWidth;
  gif.frames = torch::empty({file->ImageCount, height, width}, torch::kUInt8);
  for (int f = 0; f < file->ImageCount; ++f) {
    const auto& image = file->SavedImages[f];
    if (image.ImageDesc.Left != 0 || image.ImageDesc.Top != 0 || image.ImageDesc.Width != width ||
        image.ImageDesc.Height != height || image.ImageDesc.Interlace) {
      throw InputError(path + ": frame " + std::to_string(f) + " is not a full-size frame");
    }
    std::memcpy(gif.frames[f].data_ptr<std::uint8_t>(), image.RasterBits,
                static_cast<std::size_t>(height * width));
    GraphicsControlBlock gcb{};
    gif.delays.push_back(DGifSavedExtensionToGCB(file, f, &gcb) == GIF_OK ? gcb.DelayTime : 0);
  }
  // giflib files the extensions before a frame with that frame: the loop block is the first's.
  const auto& first = file->SavedImages[0];
  for (int e = 0; e + 1 < first.ExtensionBlockCount; ++e) {
    const auto& block = first.ExtensionBlocks[e];
    const auto& next = first.ExtensionBlocks[e + 1];
    if (block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 &&
        std::memcmp(block.Bytes, "NETSCAPE2.0", 11) == 0 && next.ByteCount == 3) {
      gif.loops = next.Bytes[1] | (next.Bytes[2] << 8);
    }
  }
  return gif;
}

}  // namespace difflab
