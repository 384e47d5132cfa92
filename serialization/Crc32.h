// CRC-32 as zlib computes it (reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF;
// crc32("123456789") == 0xCBF43926): the checksum of MindSpore's `crc_num` trailer and of the
// checkpoint manifests. Uses carry-less multiplication (PCLMULQDQ) when the CPU has it — about ten
// times zlib's table-driven speed, which matters because every save and every load of an Anvil file
// checksums the whole file — and zlib otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace anvil {

/// Continues a CRC-32: crc32_update(0, p, n) is the CRC of p[0..n); chaining calls over consecutive
/// pieces gives the CRC of their concatenation. Any n (0 returns `crc`). Never throws.
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n);

/// Running CRC-32 over a byte stream fed in pieces.
class Crc32 {
 public:
  void update(const void* data, std::size_t n) { crc_ = crc32_update(crc_, data, n); }
  std::uint32_t value() const { return crc_; }

 private:
  std::uint32_t crc_ = 0;
};

}  // namespace anvil
