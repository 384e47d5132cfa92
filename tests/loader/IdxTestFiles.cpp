#include "tests/loader/IdxTestFiles.h"

#include <zlib.h>

#include <cstdio>
#include <stdexcept>

namespace anvil::loadertest {

std::vector<std::uint8_t> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out;
  auto put32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put32(magic);
  for (auto d : dims) put32(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes, bool gz) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("gzopen failed: " + path);
    if (!bytes.empty() && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size())) {
      gzclose(f);
      throw std::runtime_error("gzwrite failed: " + path);
    }
    if (gzclose(f) != Z_OK) throw std::runtime_error("gzclose failed: " + path);
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fopen failed: " + path);
  const std::size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  if (n != bytes.size()) throw std::runtime_error("fwrite failed: " + path);
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("gzopen failed: " + path);
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  int r;
  while ((r = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + r);
  gzclose(f);
  if (r < 0) throw std::runtime_error("gzread failed: " + path);
  return out;
}

std::vector<std::uint8_t> synthetic_images(std::uint32_t n) {
  std::vector<std::uint8_t> v(std::size_t{n} * 28 * 28);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t p = 0; p < 28 * 28; ++p) v[std::size_t{i} * 784 + p] = static_cast<std::uint8_t>((i * 7 + p) % 256);
  return v;
}

std::vector<std::uint8_t> synthetic_labels(std::uint32_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::uint32_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i % 10);
  return v;
}

void write_mnist_split(const std::string& dir, const std::string& prefix, std::uint32_t n_images,
                       std::uint32_t n_labels, bool gz) {
  const std::string ext = gz ? ".gz" : "";
  write_file(dir + "/" + prefix + "-images-idx3-ubyte" + ext, idx_bytes(2051, {n_images, 28, 28}, synthetic_images(n_images)), gz);
  write_file(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, idx_bytes(2049, {n_labels}, synthetic_labels(n_labels)), gz);
}

}  // namespace anvil::loadertest
