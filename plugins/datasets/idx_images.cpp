#include "idx_images.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <zlib.h>

#include "difflab/errors.hpp"

namespace difflab {
namespace {
namespace fs = std::filesystem;

// IDX magic numbers (LeCun et al., the MNIST page): 0, 0, type 0x08 (unsigned byte), dimensions.
constexpr std::uint32_t kImagesMagic = 0x00000803;
constexpr std::uint32_t kLabelsMagic = 0x00000801;
constexpr std::int64_t kNumClasses = 10;
// Refuse headers that declare more than 4 GiB of pixels: a corrupt header, not a dataset.
constexpr std::uint64_t kMaxPixelBytes = std::uint64_t{1} << 32;

std::string hex32(std::uint32_t v) {
  std::array<char, 11> text{};
  std::snprintf(text.data(), text.size(), "0x%08x", v);
  return text.data();
}

// One IDX file read through zlib, which reads gzip and plain files alike. Errors name the file.
class IdxFile {
 public:
  explicit IdxFile(fs::path path) : path_(std::move(path)), file_(gzopen(path_.c_str(), "rb")) {
    if (!file_) fail(std::string("cannot be opened: ") + std::strerror(errno));
    gzbuffer(file_, 1 << 18);  // fewer, larger reads of the compressed file
  }
  ~IdxFile() { gzclose(file_); }
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(path_.string() + ": " + what);
  }

  /// Checks the magic number and reads the `dims` dimensions that follow it.
  std::vector<std::uint64_t> header(std::uint32_t magic, std::size_t dims, const char* kind) {
    const auto expected_bytes = std::to_string(4 * (dims + 1));
    const auto truncated = [&](std::uint64_t got) {
      fail("truncated header: " + std::to_string(got) + " bytes, an IDX " + kind +
           " file starts with " + expected_bytes);
    };
    std::uint64_t found = 0;
    if (!read_u32(found)) truncated(bytes_read_);
    if (found != magic) {
      fail("bad magic number " + hex32(static_cast<std::uint32_t>(found)) + ", expected " +
           hex32(magic) + " (IDX " + kind + ": unsigned bytes in " + std::to_string(dims) +
           " dimensions)");
    }
    std::vector<std::uint64_t> values(dims);
    for (auto& v : values) {
      if (!read_u32(v)) truncated(bytes_read_);
    }
    return values;
  }

  /// Reads exactly `n` bytes of payload that the header declared, and nothing may follow them.
  void payload(void* data, std::uint64_t n, const std::string& declared) {
    const auto got = read(data, n);
    if (got < n) {
      fail("truncated: the header declares " + declared + " (" + std::to_string(n) +
           " bytes after the header) but only " + std::to_string(got) + " follow");
    }
    char extra = 0;
    if (read(&extra, 1) != 0) {
      fail("longer than its header declares: " + declared + " (" + std::to_string(n) +
           " bytes after the header), then more bytes");
    }
  }

 private:
  // A big-endian uint32; false at the end of the data.
  bool read_u32(std::uint64_t& value) {
    std::array<unsigned char, 4> b{};
    if (read(b.data(), 4) < 4) return false;
    value = std::uint64_t{b[0]} << 24 | std::uint64_t{b[1]} << 16 | std::uint64_t{b[2]} << 8 | b[3];
    return true;
  }

  // Up to n bytes; fewer at the end of the data (a truncated gzip stream reads as its end).
  std::uint64_t read(void* data, std::uint64_t n) {
    auto* out = static_cast<char*>(data);
    std::uint64_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::uint64_t>(n - done, 1u << 30));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) {
        int code = 0;
        fail(std::string("unreadable: ") + gzerror(file_, &code));
      }
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    bytes_read_ += done;
    return done;
  }

  fs::path path_;
  gzFile file_;
  std::uint64_t bytes_read_ = 0;
};

// uint8 [N, rows, cols], read straight into the tensor's memory.
torch::Tensor read_images(const fs::path& path) {
  IdxFile file(path);
  const auto dims = file.header(kImagesMagic, 3, "image");
  const auto n = dims[0], rows = dims[1], cols = dims[2];
  const auto declared = std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                        std::to_string(cols) + " pixels";
  if (n == 0 || rows == 0 || cols == 0) file.fail("the header declares " + declared);
  // Each dimension is < 2^32, so the product of the first two cannot overflow.
  if (n * rows > kMaxPixelBytes / cols) file.fail("implausible header: " + declared);
  auto images = torch::empty({static_cast<std::int64_t>(n), static_cast<std::int64_t>(rows),
                              static_cast<std::int64_t>(cols)},
                             torch::kUInt8);
  file.payload(images.data_ptr(), n * rows * cols, declared);
  return images;
}

// uint8 [N].
torch::Tensor read_labels(const fs::path& path) {
  IdxFile file(path);
  const auto n = file.header(kLabelsMagic, 1, "label")[0];
  auto labels = torch::empty({static_cast<std::int64_t>(n)}, torch::kUInt8);
  file.payload(labels.data_ptr(), n, std::to_string(n) + " labels");
  return labels;
}

class IdxImageDataset final : public Dataset {
 public:
  IdxImageDataset(std::string plugin, const Options& o)
      : where_("dataset '" + plugin + "': "),
        image_size_(o.integer("image_size")),
        train_size_(o.integer("train_size")),
        test_size_(o.integer("test_size")) {
    const fs::path root = o.text("root");
    if (!fs::is_directory(root)) {
      throw InputError(
          where_ + "root '" + root.string() + "' is not a folder" +
          (plugin == "fashion_mnist" ? " (Debian: apt-get install dataset-fashion-mnist)" : ""));
    }
    // Found now, so that `runner validate` reports a missing file before anything runs.
    train_ = {find(root, "train-images-idx3-ubyte"), find(root, "train-labels-idx1-ubyte")};
    test_ = {find(root, "t10k-images-idx3-ubyte"), find(root, "t10k-labels-idx1-ubyte")};
  }

  DataSplit load(Split split, std::uint64_t seed) const override {
    const auto& files = split == Split::train ? train_ : test_;
    auto images = read_images(files.images);
    auto labels = read_labels(files.labels);
    const auto n = images.size(0);
    if (labels.size(0) != n) {
      throw InputError(files.labels.string() + ": holds " + std::to_string(labels.size(0)) +
                       " labels but " + files.images.filename().string() + " holds " +
                       std::to_string(n) + " images");
    }
    if (const auto top = labels.max().item<std::uint8_t>(); top >= kNumClasses) {
      throw InputError(files.labels.string() + ": label " + std::to_string(top) +
                       " is outside 0.." + std::to_string(kNumClasses - 1));
    }
    const auto size = split == Split::train ? train_size_ : test_size_;
    if (size > n) {
      throw InputError(where_ + (split == Split::train ? "train_size " : "test_size ") +
                       std::to_string(size) + " is more than the " + std::to_string(n) +
                       " images of " + files.images.string());
    }
    if (size > 0) {
      // A random subset drawn from the seed, kept in file order.
      const auto order = torch::randperm(n, split_generator(seed, split), torch::kLong);
      const auto chosen = std::get<0>(order.slice(0, 0, size).sort());
      images = images.index_select(0, chosen);
      labels = labels.index_select(0, chosen);
    }
    return {pad_and_scale(images, files.images), labels.to(torch::kLong)};
  }

  std::int64_t num_classes() const override { return kNumClasses; }

 private:
  struct Files {
    fs::path images, labels;
  };

  fs::path find(const fs::path& root, const std::string& name) const {
    for (const auto& candidate : {root / name, root / (name + ".gz")}) {
      if (fs::is_regular_file(candidate)) return candidate;
    }
    throw InputError(where_ + (root / name).string() + "[.gz]: no such file");
  }

  // uint8 [N, rows, cols] -> float32 [N, 1, S, S]: p / 127.5 - 1 maps 0 to -1 and 255 to 1
  // exactly; the border (centred, the odd pixel bottom right) is -1, i.e. black.
  torch::Tensor pad_and_scale(const torch::Tensor& images, const fs::path& file) const {
    const auto rows = images.size(1), cols = images.size(2);
    if (image_size_ < rows || image_size_ < cols) {
      throw InputError(where_ + "image_size " + std::to_string(image_size_) +
                       " is smaller than the " + std::to_string(rows) + "x" + std::to_string(cols) +
                       " images of " + file.string());
    }
    auto x = torch::full({images.size(0), 1, image_size_, image_size_}, -1.0f);
    x.select(1, 0)
        .narrow(1, (image_size_ - rows) / 2, rows)
        .narrow(2, (image_size_ - cols) / 2, cols)
        .copy_(images.to(torch::kFloat32).div_(127.5).sub_(1.0));
    return x;
  }

  std::string where_;
  std::int64_t image_size_, train_size_, test_size_;
  Files train_, test_;
};

}  // namespace

std::vector<OptionSpec> idx_image_options(std::optional<std::string> default_root) {
  auto root = OptionSpec::text("root", default_root.value_or(""),
                               "folder of the IDX files (train-images-idx3-ubyte[.gz], "
                               "train-labels-idx1-ubyte[.gz], t10k-...)");
  if (!default_root) root.required();
  return {root,
          OptionSpec::integer("image_size", 32,
                              "side of the images in pixels after centred padding with -1 "
                              "(28: no padding)")
              .at_least(1),
          OptionSpec::integer("train_size", 0,
                              "train images: a random subset of this size drawn from the seed; "
                              "0 = all")
              .at_least(0),
          OptionSpec::integer("test_size", 0,
                              "test images: a random subset of this size drawn from the seed; "
                              "0 = all")
              .at_least(0)};
}

std::unique_ptr<Dataset> make_idx_image_dataset(const std::string& plugin, const Options& o) {
  return std::make_unique<IdxImageDataset>(plugin, o);
}

}  // namespace difflab
