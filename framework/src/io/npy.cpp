#include "io/npy.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.hpp"
#include "difflab/errors.hpp"

namespace difflab {

void write_npy(const std::string& path, const torch::Tensor& tensor) {
  const auto data = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::string shape = "(";
  for (auto d : data.sizes()) shape += std::to_string(d) + ",";
  if (data.dim() > 1) shape.pop_back();  // numpy writes (n,) for 1-D and (a, b) otherwise
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  const auto tmp = temporary_path(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RunError("cannot write " + tmp);
    out.write("\x93NUMPY\x01\x00", 8);
    const std::uint16_t len = static_cast<std::uint16_t>(header.size());
    const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_bytes, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(data.data_ptr()),
              static_cast<std::streamsize>(data.numel() * sizeof(float)));
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw RunError("cannot write " + tmp);
    }
  }
  publish_file(tmp, path);
}

torch::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read");
  char magic[10];
  in.read(magic, 10);
  if (!in || std::string(magic, 6) != "\x93NUMPY") throw InputError(path + ": not a .npy file");
  const std::size_t len = static_cast<unsigned char>(magic[8]) | (static_cast<unsigned char>(magic[9]) << 8);
  std::string header(len, ' ');
  in.read(header.data(), static_cast<std::streamsize>(len));
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    throw InputError(path + ": only little-endian float32 C-order arrays are supported");
  }
  const auto open = header.find('(');
  const auto close = header.find(')', open);
  std::vector<std::int64_t> shape;
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t pos = 0;
  while (pos < dims.size()) {
    const auto comma = dims.find(',', pos);
    const auto item = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  auto out = torch::empty(shape, torch::kFloat32);
  in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(out.numel() * sizeof(float)));
  if (!in) throw InputError(path + ": truncated data");
  return out;
}

}  // namespace difflab
