// IDX reader: the file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), gzipped or raw.
//
// An IDX file is a big-endian header followed by the array's elements in row-major order:
//   bytes 0-1  zero
//   byte  2    element type code (0x08 unsigned byte; 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)
//   byte  3    number of dimensions R
//   then R big-endian uint32 dimension sizes, then the data.
// The 32-bit big-endian value of bytes 0-3 is the "magic number": 2051 (0x00000803) for MNIST images
// (u8, 3 dims) and 2049 (0x00000801) for MNIST labels (u8, 1 dim).
//
// Only unsigned-byte arrays are supported (all that the MNIST family uses); other type codes are rejected.
// The header is checked, not a checksum (Debian's .gz files differ from upstream's bytes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/core/DType.h"

namespace anvil {

/// The MNIST magic numbers (see the file comment).
inline constexpr std::uint32_t kIdxMagicImages = 2051;  // 0x00000803: u8, rank 3 [N, rows, cols]
inline constexpr std::uint32_t kIdxMagicLabels = 2049;  // 0x00000801: u8, rank 1 [N]

/// One array read from an IDX file.
struct IdxArray {
  std::string path;                  // the file it was read from (for error messages downstream)
  std::uint32_t magic = 0;           // bytes 0-3 as a big-endian integer
  DType dtype = DType::kU8;          // derived from the type code (always kU8 today)
  std::vector<std::int64_t> dims;    // R >= 1 dimension sizes
  std::vector<std::uint8_t> bytes;   // product(dims) * dtype_size(dtype) bytes, row-major

  /// Product of dims.
  std::int64_t numel() const;
};

/// Options for read_idx. Defaults accept any supported IDX array.
struct IdxReadOptions {
  /// When non-zero, the file's magic number must equal this (e.g. kIdxMagicImages).
  std::uint32_t expected_magic = 0;
  /// What the caller expects, spelled into the wrong-magic error, e.g. "MNIST images". Optional.
  std::string role{};
  /// Upper bound on the payload size in bytes; headers that describe more are rejected as absurd
  /// (also protects against dims whose product overflows).
  std::uint64_t max_bytes = std::uint64_t{1} << 32;
};

/// Reads the IDX array stored in `path`, which may be gzip-compressed or raw (detected from the
/// content, not the name).
/// Effects: reads the whole file; memory use is bounded by the bytes actually present (a header that
///   claims more than the file holds never causes a large allocation).
/// Errors (anvil::Error, every message starts with "read_idx: '<path>': "):
///   - the file does not exist, is not a regular file, or cannot be opened/read (errno / zlib message);
///   - truncated header ("header needs 16 bytes, got 9") or truncated data ("expected 47040000 bytes of
///     data after the 16-byte header, got 1000"), including a gzip stream cut short;
///   - wrong magic: options.expected_magic is set and differs (both values and options.role are named);
///     or the first two bytes are not zero (not an IDX file);
///   - unsupported element type code (anything but 0x08), zero dimensions;
///   - dims whose byte size overflows or exceeds options.max_bytes;
///   - data continues after the payload the header describes (trailing bytes).
IdxArray read_idx(const std::string& path, const IdxReadOptions& options = {});

}  // namespace anvil
