// Helpers for the loader tests: write IDX files (raw or gzip) and MNIST-layout folders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anvil::loadertest {

/// Big-endian IDX header (magic, then dims) followed by `data`.
std::vector<std::uint8_t> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data);
/// Writes `bytes` as-is, or gzip-compressed through zlib's gzopen/gzwrite when `gz`.
void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes, bool gz);
/// Reads a whole file (gzip or raw) through zlib's gzread; for checks that must not trust the reader.
std::vector<std::uint8_t> read_all(const std::string& path);

/// Deterministic synthetic MNIST split: n images 28x28 (pixel (i, r, c) = (i*7 + r*28 + c) % 256) and
/// labels i % 10.
std::vector<std::uint8_t> synthetic_images(std::uint32_t n);
std::vector<std::uint8_t> synthetic_labels(std::uint32_t n);

/// Writes `<dir>/<prefix>-images-idx3-ubyte[.gz]` and `<dir>/<prefix>-labels-idx1-ubyte[.gz]`.
void write_mnist_split(const std::string& dir, const std::string& prefix, std::uint32_t n_images,
                       std::uint32_t n_labels, bool gz);

}  // namespace anvil::loadertest
