#include "framework/data/IdxReader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

// Every reader error names the file: "read_idx: '<path>': <what>".
template <typename... Args>
[[noreturn]] void fail(const std::string& path, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format("read_idx: '{}': ", path) + fmt::format(f, std::forward<Args>(args)...));
}

// RAII owner of a zlib gzFile (zlib reads raw files through the same API, transparently).
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

const char* type_code_name(std::uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Reads up to `n` bytes into `dst`; returns how many were read (< n only at end of file).
// Throws on a zlib/IO error, which includes a gzip stream that ends before its trailer.
std::size_t read_some(gzFile f, const std::string& path, void* dst, std::size_t n, std::uint64_t already) {
  std::size_t got = 0;
  auto* out = static_cast<unsigned char*>(dst);
  while (got < n) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, std::size_t{1} << 30));
    const int r = gzread(f, out + got, chunk);
    if (r < 0) {
      int errnum = Z_OK;
      const char* msg = gzerror(f, &errnum);
      if (errnum == Z_ERRNO)
        fail(path, "read error after {} bytes: {}", already + got, std::strerror(errno));
      fail(path, "corrupt or truncated gzip stream after {} bytes of content (zlib: {})", already + got,
           msg ? msg : "unknown error");
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

}  // namespace

std::int64_t IdxArray::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;
  return n;
}

IdxArray read_idx(const std::string& path, const IdxReadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) fail(path, "file not found");
  if (!fs::is_regular_file(st)) fail(path, "not a regular file");

  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) fail(path, "cannot open: {}", errno ? std::strerror(errno) : "zlib could not allocate its state");
  gzbuffer(file.get(), 1u << 17);

  IdxArray out;
  out.path = path;

  // ---- magic ----
  unsigned char head[4];
  const std::size_t got_magic = read_some(file.get(), path, head, 4, 0);
  if (got_magic < 4) fail(path, "truncated: the IDX header needs at least 4 bytes, got {}", got_magic);
  out.magic = be32(head);
  if (options.expected_magic != 0 && out.magic != options.expected_magic) {
    fail(path, "wrong magic number {} (0x{:08X}), expected {} (0x{:08X}){}{}", out.magic, out.magic,
         options.expected_magic, options.expected_magic, options.role.empty() ? "" : " for ", options.role);
  }
  if (head[0] != 0 || head[1] != 0)
    fail(path, "not an IDX file: magic number 0x{:08X} does not start with two zero bytes", out.magic);
  const std::uint8_t type_code = head[2];
  if (type_code != 0x08)
    fail(path, "unsupported IDX element type code 0x{:02X} ({}); only 0x08 (unsigned byte) is supported",
         type_code, type_code_name(type_code));
  out.dtype = DType::kU8;
  const unsigned rank = head[3];
  if (rank == 0) fail(path, "IDX header declares 0 dimensions");

  // ---- dims ----
  const std::size_t header_bytes = 4 + 4 * std::size_t{rank};
  std::vector<unsigned char> dim_bytes(4 * std::size_t{rank});
  const std::size_t got_dims = read_some(file.get(), path, dim_bytes.data(), dim_bytes.size(), 4);
  if (got_dims < dim_bytes.size())
    fail(path, "truncated: the IDX header of a rank-{} array needs {} bytes, got {}", rank, header_bytes,
         4 + got_dims);
  std::uint64_t total = dtype_size(out.dtype);
  bool too_big = false;
  for (unsigned i = 0; i < rank; ++i) {
    const std::uint32_t d = be32(dim_bytes.data() + 4 * i);
    out.dims.push_back(d);
    // Multiplying in this order can't overflow: total <= max_bytes before each step is checked.
    if (!too_big && d != 0 && total > options.max_bytes / d) too_big = true;
    if (!too_big) total *= d;
  }
  if (too_big) {
    std::string s;
    for (auto d : out.dims) {
      if (!s.empty()) s += ',';
      s += std::to_string(d);
    }
    fail(path, "absurd IDX dims [{}]: the array would exceed {} bytes (IdxReadOptions::max_bytes)", s,
         options.max_bytes);
  }
  if (std::any_of(out.dims.begin(), out.dims.end(), [](std::int64_t d) { return d == 0; })) total = 0;

  // ---- data ----
  // Grow in chunks rather than allocating `total` up front, so that a lying header over a short file
  // costs no more memory than the file holds.
  const std::size_t expected = static_cast<std::size_t>(total);
  constexpr std::size_t kChunk = std::size_t{16} << 20;
  out.bytes.reserve(std::min(expected, 4 * kChunk));  // one allocation for MNIST-sized files
  std::size_t have = 0;
  while (have < expected) {
    const std::size_t want = std::min(kChunk, expected - have);
    out.bytes.resize(have + want);
    const std::size_t got = read_some(file.get(), path, out.bytes.data() + have, want, header_bytes + have);
    have += got;
    if (got < want) {
      fail(path, "truncated: expected {} bytes of data after the {}-byte header, got {}", expected, header_bytes,
           have);
    }
  }
  unsigned char extra;
  if (read_some(file.get(), path, &extra, 1, header_bytes + have) != 0)
    fail(path, "trailing data after the {} bytes of data the header describes", expected);
  return out;
}

}  // namespace anvil
