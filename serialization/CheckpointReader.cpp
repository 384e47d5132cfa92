#include "serialization/CheckpointReader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "framework/core/Log.h"
#include "serialization/Crc32.h"
#include "serialization/TensorType.h"

namespace anvil {

std::string_view integrity_name(Integrity integrity) {
  switch (integrity) {
    case Integrity::kVerifiedCrc: return "verified-crc";
    case Integrity::kVerifiedManifest: return "verified-manifest";
    case Integrity::kUnverified: return "unverified";
  }
  return "unknown";
}

namespace {

constexpr char kCrcMagic[] = "crc_num";  // 7 bytes before the 10-byte CRC
constexpr std::size_t kMaxTagBytes = 1 << 20;
constexpr std::size_t kMaxTypeBytes = 64;
constexpr std::size_t kMaxRank = 64;
constexpr std::uint32_t kEncryptedMagic[] = {0x7F3A5ED8u, 0x7F3A5ED9u, 0x7F3A5EDAu};

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s.push_back(',');
    s.append(std::to_string(dims[i]));
  }
  s.push_back(']');
  return s;
}

// Sequential reader over [0, end) of a file with a small window buffer; skips are free (contents of
// tensors are never read during the structural parse).
class Cursor {
 public:
  Cursor(const ByteSource& file, std::uint64_t end) : file_(file), end_(end) {}
  std::uint64_t pos = 0;

  // Precondition: pos < end_.
  unsigned char byte() {
    if (pos < start_ || pos >= start_ + len_) refill();
    return buf_[pos++ - start_];
  }
  // Precondition: pos + n <= end_.
  void read(void* dst, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    while (n > 0) {
      if (pos < start_ || pos >= start_ + len_) refill();
      const std::size_t k = std::min<std::size_t>(n, start_ + len_ - pos);
      std::memcpy(d, buf_ + (pos - start_), k);
      d += k;
      pos += k;
      n -= k;
    }
  }

 private:
  void refill() {
    start_ = pos;
    len_ = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof(buf_), end_ - pos));
    file_.read_exact(start_, buf_, len_);
  }
  const ByteSource& file_;
  std::uint64_t end_;
  std::uint64_t start_ = 0;
  std::size_t len_ = 0;
  unsigned char buf_[64 * 1024];
};

enum class VarintStatus { kOk, kPastLimit, kOverlong };

VarintStatus read_varint(Cursor& c, std::uint64_t limit, std::uint64_t& out) {
  out = 0;
  for (int i = 0; i < 10; ++i) {
    if (c.pos >= limit) return VarintStatus::kPastLimit;
    const unsigned char b = c.byte();
    if (i == 9 && b > 1) return VarintStatus::kOverlong;
    out |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return VarintStatus::kOk;
  }
  return VarintStatus::kOverlong;
}

// Checks n * m for overflow against `limit`; returns false when the product exceeds it.
bool mul_within(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return out <= limit;
}

// Copies n bytes from a mapped file into (large, freshly loaded) tensor memory. Big copies use
// non-temporal stores: the data is not going to be read back right away, and streaming stores skip the
// read-for-ownership of every destination line, which roughly doubles the bandwidth of a load.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f"))) void copy_stream_avx512(unsigned char* dst, const unsigned char* src, std::size_t n) {
  const std::size_t head = (64 - (reinterpret_cast<std::uintptr_t>(dst) & 63)) & 63;
  std::memcpy(dst, src, head);
  dst += head;
  src += head;
  n -= head;
  std::size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    const __m512i a = _mm512_loadu_si512(src + i);
    const __m512i b = _mm512_loadu_si512(src + i + 64);
    const __m512i c = _mm512_loadu_si512(src + i + 128);
    const __m512i d = _mm512_loadu_si512(src + i + 192);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), a);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 64), b);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 128), c);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 192), d);
  }
  _mm_sfence();
  std::memcpy(dst + i, src + i, n - i);
}
#endif

void copy_large(void* dst, const void* src, std::size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512 && n >= (1u << 20)) {
    copy_stream_avx512(static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), n);
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

}  // namespace

// ---- structural parser ----------------------------------------------------------------------------

struct EntryParser {
  Cursor& c;
  std::size_t index;  // entry number
  std::uint64_t entry_offset;
  const std::string& context;
  const std::string& path;

  [[noreturn]] void fail(CkptErrc code, const std::string& detail) const {
    throw_ckpt_error(context.c_str(), code, path, detail);
  }

  std::string where() const { return fmt::format("entry {} at offset {}", index, entry_offset); }

  std::uint64_t varint(std::uint64_t limit, const char* what) {
    const std::uint64_t at = c.pos;
    std::uint64_t v = 0;
    switch (read_varint(c, limit, v)) {
      case VarintStatus::kOk: return v;
      case VarintStatus::kPastLimit:
        fail(CkptErrc::kMalformed, fmt::format("{}: {} at offset {} runs past the end of its message (offset {})",
                                               where(), what, at, limit));
      case VarintStatus::kOverlong:
        fail(CkptErrc::kMalformed, fmt::format("{}: {} at offset {} is not a valid varint", where(), what, at));
    }
    fail(CkptErrc::kMalformed, "unreachable");
  }

  // Reads a length prefix and checks that the field fits in [c.pos, limit).
  std::uint64_t length(std::uint64_t limit, std::uint64_t field, std::uint64_t key_offset) {
    const std::uint64_t len = varint(limit, "length");
    const std::uint64_t remain = limit - c.pos;
    if (len > remain)
      fail(CkptErrc::kMalformed,
           fmt::format("{}: field {} at offset {} declares {} bytes, {} remain in its message", where(), field,
                       key_offset, len, remain));
    return len;
  }

  void expect_wire(std::uint64_t field, std::uint64_t wire, std::uint64_t want, const char* name,
                   std::uint64_t key_offset) {
    if (wire != want)
      fail(CkptErrc::kMalformed, fmt::format("{}: field {} ({}) at offset {} has wire type {}, expected {}", where(),
                                             field, name, key_offset, wire, want));
  }

  [[noreturn]] void unknown(const char* message, std::uint64_t field, std::uint64_t wire, std::uint64_t key_offset) {
    fail(CkptErrc::kMalformed, fmt::format("{}: unknown field {} (wire type {}) in {} at offset {}", where(), field,
                                           wire, message, key_offset));
  }

  // TensorProto in [c.pos, end).
  void tensor(std::uint64_t end, std::vector<std::int64_t>& dims, std::string& type, std::uint64_t& content_offset,
              std::uint64_t& content_size, const char* message) {
    bool have_type = false, have_content = false;
    while (c.pos < end) {
      const std::uint64_t key_offset = c.pos;
      const std::uint64_t key = varint(end, "field key");
      const std::uint64_t field = key >> 3, wire = key & 7;
      if (field == 1 && wire == 0) {
        if (dims.size() >= kMaxRank)
          fail(CkptErrc::kMalformed, fmt::format("{}: more than {} dims", where(), kMaxRank));
        dims.push_back(static_cast<std::int64_t>(varint(end, "dim")));
      } else if (field == 1 && wire == 2) {  // packed dims
        const std::uint64_t len = length(end, field, key_offset);
        const std::uint64_t sub_end = c.pos + len;
        while (c.pos < sub_end) {
          if (dims.size() >= kMaxRank)
            fail(CkptErrc::kMalformed, fmt::format("{}: more than {} dims", where(), kMaxRank));
          dims.push_back(static_cast<std::int64_t>(varint(sub_end, "packed dim")));
        }
      } else if (field == 2) {
        expect_wire(field, wire, 2, "tensor_type", key_offset);
        const std::uint64_t len = length(end, field, key_offset);
        if (have_type)
          fail(CkptErrc::kMalformed, fmt::format("{}: tensor_type given twice (offset {})", where(), key_offset));
        if (len > kMaxTypeBytes)
          fail(CkptErrc::kMalformed, fmt::format("{}: tensor_type of {} bytes at offset {}", where(), len, key_offset));
        type.resize(static_cast<std::size_t>(len));
        c.read(type.data(), type.size());
        have_type = true;
      } else if (field == 3) {
        expect_wire(field, wire, 2, "tensor_content", key_offset);
        const std::uint64_t len = length(end, field, key_offset);
        if (have_content)
          fail(CkptErrc::kMalformed, fmt::format("{}: tensor_content given twice (offset {})", where(), key_offset));
        content_offset = c.pos;
        content_size = len;
        c.pos += len;
        have_content = true;
      } else {
        unknown(message, field, wire, key_offset);
      }
    }
    if (!have_type) fail(CkptErrc::kMalformed, fmt::format("{}: {} has no tensor_type", where(), message));
    if (!have_content) fail(CkptErrc::kMalformed, fmt::format("{}: {} has no tensor_content", where(), message));
  }

  // MapTensorProto in [c.pos, end): structure only (map tensors are not loaded in v1).
  void map_tensor(std::uint64_t end) {
    while (c.pos < end) {
      const std::uint64_t key_offset = c.pos;
      const std::uint64_t key = varint(end, "field key");
      const std::uint64_t field = key >> 3, wire = key & 7;
      if (field != 1) unknown("MapTensorProto", field, wire, key_offset);
      expect_wire(field, wire, 2, "tensor", key_offset);
      const std::uint64_t len = length(end, field, key_offset);
      std::vector<std::int64_t> dims;
      std::string type;
      std::uint64_t off = 0, size = 0;
      tensor(c.pos + len, dims, type, off, size, "MapTensorProto.tensor");
    }
  }

  // Checkpoint.Value in [c.pos, end).
  void value(std::uint64_t end, CheckpointEntry& e) {
    bool have_tag = false, have_value = false;
    while (c.pos < end) {
      const std::uint64_t key_offset = c.pos;
      const std::uint64_t key = varint(end, "field key");
      const std::uint64_t field = key >> 3, wire = key & 7;
      if (field == 1) {
        expect_wire(field, wire, 2, "tag", key_offset);
        const std::uint64_t len = length(end, field, key_offset);
        if (have_tag) fail(CkptErrc::kMalformed, fmt::format("{}: tag given twice (offset {})", where(), key_offset));
        if (len > kMaxTagBytes)
          fail(CkptErrc::kMalformed, fmt::format("{}: tag of {} bytes exceeds the limit of {}", where(), len,
                                                 kMaxTagBytes));
        e.tag.resize(static_cast<std::size_t>(len));
        c.read(e.tag.data(), e.tag.size());
        have_tag = true;
      } else if (field == 2 || field == 3) {
        expect_wire(field, wire, 2, field == 2 ? "tensor" : "maptensor", key_offset);
        const std::uint64_t len = length(end, field, key_offset);
        if (have_value)
          fail(CkptErrc::kMalformed,
               fmt::format("{}: more than one tensor/maptensor value (second at offset {})", where(), key_offset));
        have_value = true;
        if (field == 2) {
          tensor(c.pos + len, e.dims, e.tensor_type, e.content_offset, e.content_size, "TensorProto");
        } else {
          e.map_tensor = true;
          map_tensor(c.pos + len);
        }
      } else {
        unknown("Checkpoint.Value", field, wire, key_offset);
      }
    }
    if (!have_tag) fail(CkptErrc::kMalformed, fmt::format("{}: no tag", where()));
    if (e.tag.empty()) fail(CkptErrc::kMalformed, fmt::format("{}: empty tag", where()));
    if (!is_valid_utf8(e.tag)) fail(CkptErrc::kMalformed, fmt::format("{}: tag is not valid UTF-8", where()));
    if (!have_value)
      fail(CkptErrc::kMalformed, fmt::format("{}: tag '{}' has neither a tensor nor a maptensor", where(), e.tag));
  }
};

// ---- CheckpointReader ------------------------------------------------------------------------------

CheckpointReader::~CheckpointReader() = default;
CheckpointReader::CheckpointReader(CheckpointReader&&) noexcept = default;

void CheckpointReader::fail(CkptErrc code, const std::string& detail) const {
  throw_ckpt_error(options_.context.c_str(), code, path_, detail);
}

CheckpointReader::CheckpointReader(std::string path, ReaderOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
  open_and_validate(true);
}

CheckpointReader::CheckpointReader(std::string name, const void* data, std::size_t size, ReaderOptions options)
    : path_(std::move(name)), options_(std::move(options)) {
  file_ = std::make_unique<MemorySource>(data, size);
  open_and_validate(false);
}

void CheckpointReader::open_and_validate(bool is_file) {
  check_header(is_file);
  // Large files are read through a read-only mapping: checksumming and copying from it is about twice
  // as fast as pread (which copies through the kernel at a lower bandwidth). Checkpoints are replaced
  // by rename, never truncated in place, so the mapping stays valid; see ReaderOptions::use_mmap.
  if (is_file && options_.use_mmap && file_size_ >= kMapThresholdBytes) {
    try {
      map_ = std::make_unique<MappedRegion>(static_cast<const ReadOnlyFile&>(*file_).fd(), path_, 0, file_size_);
    } catch (const FileError&) {
      map_.reset();  // e.g. a file system without mmap support: pread instead
    }
  }
  std::optional<std::uint32_t> whole_crc;
  std::string manifest = options_.manifest_path;
  if (manifest.empty() && is_file) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path_ + ".manifest.json", ec)) manifest = path_ + ".manifest.json";
  }
  options_.manifest_path = manifest;
  if (has_trailer_ || !manifest.empty()) {
    std::uint32_t crc = 0;
    verify_trailer(&crc, !manifest.empty());
    if (!manifest.empty()) whole_crc = crc;
  }
  parse_entries();
  if (entries_.empty())
    fail(CkptErrc::kNoEntries,
         fmt::format("no checkpoint entries in {} bytes (not a MindSpore checkpoint, or an empty one)", data_size_));
  build_items();
  establish_integrity(whole_crc);
}

void CheckpointReader::check_header(bool is_file) {
  // 1. exists and is a regular file
  if (is_file) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0)
      fail(CkptErrc::kNotFound, fmt::format("cannot open: {}", std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) fail(CkptErrc::kNotFound, "not a regular file");
    try {
      file_ = std::make_unique<ReadOnlyFile>(path_);
    } catch (const FileError& e) {
      fail(e.error_number() == ENOENT ? CkptErrc::kNotFound : CkptErrc::kIo, e.what());
    }
  }
  file_size_ = file_->size();
  data_size_ = file_size_;
  // 2. empty
  if (file_size_ == 0) fail(CkptErrc::kEmpty, "the file is empty (0 bytes)");
  try {
    // 3. encrypted (MindSpore writes a native-endian int32 magic first)
    if (file_size_ >= 4) {
      std::uint32_t magic = 0;
      file_->read_exact(0, &magic, 4);
      for (std::uint32_t m : kEncryptedMagic)
        if (magic == m)
          fail(CkptErrc::kEncrypted,
               fmt::format("encrypted MindSpore checkpoint (magic 0x{:08X}); decryption is not supported", magic));
    }
    // trailer detection
    if (file_size_ >= kCrcTrailerBytes) {
      unsigned char t[kCrcTrailerBytes];
      file_->read_exact(file_size_ - kCrcTrailerBytes, t, kCrcTrailerBytes);
      if (std::memcmp(t, kCrcMagic, 7) == 0) {
        has_trailer_ = true;
        data_size_ = file_size_ - kCrcTrailerBytes;
        for (int i = 7; i < 13; ++i)
          if (t[i] != 0)
            fail(CkptErrc::kCrcMismatch,
                 fmt::format("corrupt integrity trailer at offset {}: the CRC's high bytes are not zero",
                             data_size_));
        stored_crc_ = (static_cast<std::uint32_t>(t[13]) << 24) | (static_cast<std::uint32_t>(t[14]) << 16) |
                      (static_cast<std::uint32_t>(t[15]) << 8) | static_cast<std::uint32_t>(t[16]);
      }
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const FileError& e) {
    fail(CkptErrc::kIo, e.what());
  } catch (const Error& e) {
    fail(CkptErrc::kTruncated, e.what());
  }
}

void CheckpointReader::verify_trailer(std::uint32_t* whole_file_crc, bool need_whole_crc) {
  // 4. CRC over every byte before the trailer (and, for a manifest, over the whole file), straight from
  // memory when the file is mapped (no copy: about twice as fast as reading it into a buffer).
  std::vector<unsigned char> buf(kCrcTrailerBytes);
  std::uint32_t crc = 0;
  bool done = false;
  const unsigned char* direct = nullptr;
  if (const auto* mem = dynamic_cast<const MemorySource*>(file_.get())) direct = mem->data();
  if (map_) direct = map_->data();
  if (direct) {
    constexpr std::size_t kPiece = 256u << 20;
    for (std::uint64_t off = 0; off < data_size_; off += kPiece)
      crc = crc32_update(crc, direct + off, static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, data_size_ - off)));
    done = true;
  }
  try {
    if (!done) buf.resize(1 << 20);
    for (std::uint64_t off = 0; !done && off < data_size_;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), data_size_ - off));
      file_->read_exact(off, buf.data(), n);
      crc = crc32_update(crc, buf.data(), n);
      off += n;
    }
    if (has_trailer_ && crc != stored_crc_)
      fail(CkptErrc::kCrcMismatch,
           fmt::format("integrity trailer: stored 0x{:08X}, computed 0x{:08X} over {} bytes", stored_crc_, crc,
                       data_size_));
    if (need_whole_crc && has_trailer_) {
      file_->read_exact(data_size_, buf.data(), kCrcTrailerBytes);
      crc = crc32_update(crc, buf.data(), kCrcTrailerBytes);
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const FileError& e) {
    fail(CkptErrc::kIo, e.what());
  } catch (const Error& e) {
    fail(CkptErrc::kTruncated, e.what());
  }
  *whole_file_crc = crc;
}

void CheckpointReader::parse_entries() {
  // 5. Streaming structural parse, entry by entry.
  Cursor c(*file_, data_size_);
  try {
    while (c.pos < data_size_) {
      const std::uint64_t key_offset = c.pos;
      std::uint64_t key = 0;
      const VarintStatus st = read_varint(c, data_size_, key);
      if (st == VarintStatus::kOk && key == 0x0A) {
        std::uint64_t len = 0;
        const std::uint64_t len_offset = c.pos;
        const VarintStatus ls = read_varint(c, data_size_, len);
        if (ls == VarintStatus::kPastLimit)
          fail(CkptErrc::kTruncated, fmt::format("entry {} at offset {}: the file ends inside its length prefix",
                                                 entries_.size(), key_offset));
        if (ls == VarintStatus::kOverlong)
          fail(CkptErrc::kNotACheckpoint,
               fmt::format("entry {} at offset {}: invalid length varint at offset {}", entries_.size(), key_offset,
                           len_offset));
        const std::uint64_t remain = data_size_ - c.pos;
        if (len > remain)
          fail(CkptErrc::kTruncated, fmt::format("entry {} at offset {} declares {} bytes, {} remain",
                                                 entries_.size(), key_offset, len, remain));
        CheckpointEntry e;
        e.index = entries_.size();
        e.offset = key_offset;
        e.end = c.pos + len;
        EntryParser p{c, e.index, key_offset, options_.context, path_};
        p.value(e.end, e);
        entries_.push_back(std::move(e));
        continue;
      }
      if (st == VarintStatus::kOk && key == 0x12 && !model_type_) {
        // v0.5.0-beta: top-level `string model_type = 2` ("normal" / "fusion" / "quant").
        std::uint64_t len = 0;
        if (read_varint(c, data_size_, len) == VarintStatus::kOk && len <= 16 && len <= data_size_ - c.pos) {
          std::string s(static_cast<std::size_t>(len), '\0');
          c.read(s.data(), s.size());
          if (s == "normal" || s == "fusion" || s == "quant") {
            model_type_ = s;
            continue;
          }
        }
      }
      // Not an entry. A file cut inside its integrity trailer ends in a prefix of "crc_num...".
      const std::uint64_t remain = data_size_ - key_offset;
      if (!has_trailer_ && remain < kCrcTrailerBytes) {
        unsigned char tail[kCrcTrailerBytes];
        file_->read_exact(key_offset, tail, static_cast<std::size_t>(remain));
        if (std::memcmp(tail, kCrcMagic, std::min<std::size_t>(7, static_cast<std::size_t>(remain))) == 0)
          fail(CkptErrc::kTruncated,
               fmt::format("the file ends inside its integrity trailer: {} of {} bytes at offset {}", remain,
                           kCrcTrailerBytes, key_offset));
      }
      const std::string how = st == VarintStatus::kOk
                                  ? fmt::format("field {}, wire type {}", key >> 3, key & 7)
                                  : std::string("an invalid field key");
      fail(CkptErrc::kNotACheckpoint,
           fmt::format("unexpected top-level {} at byte offset {} (after {} entries): not a MindSpore checkpoint, or a "
                       "corrupt one",
                       how, key_offset, entries_.size()));
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const FileError& e) {
    fail(CkptErrc::kIo, e.what());
  } catch (const Error& e) {
    fail(CkptErrc::kTruncated, e.what());
  }
}

void CheckpointReader::build_items() {
  // 7. Group slices, then check types, sizes and slices.
  std::unordered_map<std::string, std::size_t> by_tag;
  for (std::size_t i = 0; i < entries_.size();) {
    std::size_t j = i + 1;
    while (j < entries_.size() && entries_[j].tag == entries_[i].tag && entries_[j].map_tensor == entries_[i].map_tensor)
      ++j;
    const CheckpointEntry& first = entries_[i];
    CheckpointItem item;
    item.tag = first.tag;
    item.first_entry = i;
    item.entry_count = j - i;
    item.stored_dims = first.dims;
    item.tensor_type = first.tensor_type;
    const std::string where = fmt::format("tag '{}' (entry {} at offset {})", first.tag, first.index, first.offset);

    if (first.map_tensor) {
      if (options_.strict)
        fail(CkptErrc::kUnsupported, fmt::format("{} is a map tensor (MapParameter), which is not supported", where));
      item.kind = CheckpointItem::Kind::kMapTensor;
      skipped_.push_back(first.tag);
      warnings_.push_back(fmt::format("{}: map tensor (MapParameter) skipped: not supported", where));
      i = j;
      continue;
    }
    std::uint64_t total = 0;
    for (std::size_t k = i; k < j; ++k) {
      const CheckpointEntry& e = entries_[k];
      if (e.dims != first.dims || e.tensor_type != first.tensor_type)
        fail(CkptErrc::kSliceMismatch,
             fmt::format("{}: slice {} (entry {} at offset {}) has dims {} type '{}', the first slice dims {} type '{}'",
                         where, k - i, e.index, e.offset, dims_str(e.dims), e.tensor_type, dims_str(first.dims),
                         first.tensor_type));
      total += e.content_size;  // each is bounded by the file size: no overflow
    }
    item.nbytes = total;

    if (first.tensor_type == "str") {
      item.kind = CheckpointItem::Kind::kString;
      if (total % 4 != 0)
        fail(CkptErrc::kBadString,
             fmt::format("{}: string content of {} bytes is not UTF-32LE (not a multiple of 4)", where, total));
    } else {
      const auto dt = parse_ms_tensor_type(first.tensor_type);
      if (!dt) {
        if (first.tensor_type == "Int4")
          fail(CkptErrc::kBadDtype, fmt::format("{}: tensor_type 'Int4' (packed 4-bit) is not supported", where));
        fail(CkptErrc::kBadDtype, fmt::format("{}: unknown tensor_type '{}'", where, first.tensor_type));
      }
      item.dtype = *dt;
      const std::uint64_t esize = dtype_size(*dt);
      std::uint64_t numel = 1;
      for (std::int64_t d : first.dims) {
        if (d < 0) fail(CkptErrc::kSizeMismatch, fmt::format("{}: negative dimension in dims {}", where, dims_str(first.dims)));
        if (!mul_within(numel, static_cast<std::uint64_t>(d), std::numeric_limits<std::int64_t>::max(), numel))
          fail(CkptErrc::kSizeMismatch, fmt::format("{}: dims {} overflow", where, dims_str(first.dims)));
      }
      std::uint64_t expected = 0;
      const bool overflow = !mul_within(numel, esize, std::numeric_limits<std::int64_t>::max(), expected);
      if (first.dims.size() == 1 && first.dims[0] == 0 && total == esize) {
        item.shape = Shape{};  // legacy (MindSpore <= 2.2) scalar
      } else if (overflow || expected != total) {
        fail(CkptErrc::kSizeMismatch,
             fmt::format("{}: dims {} type {} need {} bytes, the content has {}{}", where, dims_str(first.dims),
                         first.tensor_type, overflow ? std::string("more than 2^63") : std::to_string(expected), total,
                         item.entry_count > 1 ? fmt::format(" (joined from {} slices)", item.entry_count) : ""));
      } else {
        item.shape = Shape(first.dims);
      }
    }

    auto it = by_tag.find(item.tag);
    if (it != by_tag.end()) {
      if (options_.strict)
        fail(CkptErrc::kDuplicateTag,
             fmt::format("{} repeats a tag first seen at entry {}", where, items_[it->second].first_entry));
      warnings_.push_back(fmt::format("{} repeats a tag first seen at entry {}; the later entry wins (as in MindSpore)",
                                      where, items_[it->second].first_entry));
      items_[it->second] = std::move(item);
    } else {
      by_tag.emplace(item.tag, items_.size());
      items_.push_back(std::move(item));
    }
    i = j;
  }
  for (const auto& w : warnings_) log(LogLevel::kWarning, fmt::format("{}: checkpoint file '{}': {}", options_.context, path_, w));
}

void CheckpointReader::establish_integrity(const std::optional<std::uint32_t>& whole_crc) {
  // 8. Integrity status.
  if (has_trailer_) integrity_ = Integrity::kVerifiedCrc;
  std::string manifest_problem;
  if (!options_.manifest_path.empty() && whole_crc) {
    const std::string& mp = options_.manifest_path;
    nlohmann::json j;
    try {
      std::ifstream in(mp);
      if (!in) throw std::runtime_error("cannot be opened");
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      manifest_problem = fmt::format("manifest '{}' is unreadable ({})", mp, e.what());
    }
    if (manifest_problem.empty()) {
      auto get_u64 = [&](const char* key, std::uint64_t& out) -> bool {
        if (!j.is_object() || !j.contains(key)) return false;
        const auto& v = j[key];
        if (v.is_number_unsigned()) {
          out = v.get<std::uint64_t>();
          return true;
        }
        if (v.is_string()) {
          try {
            out = std::stoull(v.get<std::string>(), nullptr, 0);
            return true;
          } catch (...) {
            return false;
          }
        }
        return false;
      };
      std::uint64_t bytes = 0, crc = 0, count = 0;
      if (!get_u64("bytes", bytes) || !get_u64("crc32", crc) || !get_u64("entries", count)) {
        manifest_problem = fmt::format("manifest '{}' lacks bytes/crc32/entries", mp);
      } else if (j.contains("file") && j["file"].is_string() &&
                 j["file"].get<std::string>() != std::filesystem::path(path_).filename().string()) {
        manifest_problem = fmt::format("manifest '{}' describes '{}', not this file", mp, j["file"].get<std::string>());
      } else {
        if (file_size_ < bytes)
          fail(CkptErrc::kTruncated,
               fmt::format("the manifest '{}' records {} bytes, the file has {}", mp, bytes, file_size_));
        if (file_size_ != bytes)
          fail(CkptErrc::kCrcMismatch,
               fmt::format("the manifest '{}' records {} bytes, the file has {}", mp, bytes, file_size_));
        if (crc != *whole_crc)
          fail(CkptErrc::kCrcMismatch,
               fmt::format("manifest '{}': stored 0x{:08X}, computed 0x{:08X}", mp, crc, *whole_crc));
        if (count != entries_.size())
          fail(count > entries_.size() ? CkptErrc::kTruncated : CkptErrc::kCrcMismatch,
               fmt::format("the manifest '{}' records {} entries, the file has {}", mp, count, entries_.size()));
        if (integrity_ == Integrity::kUnverified) integrity_ = Integrity::kVerifiedManifest;
      }
    }
  }
  if (integrity_ != Integrity::kUnverified) return;
  const std::string msg =
      "no integrity trailer or manifest: truncation at an entry boundary cannot be ruled out" +
      (manifest_problem.empty() ? std::string() : " (" + manifest_problem + ")");
  if (options_.require_integrity) fail(CkptErrc::kUnverified, msg);
  warnings_.push_back(msg);
  if (options_.warn_unverified)
    log(LogLevel::kWarning, fmt::format("{}: checkpoint file '{}': {}", options_.context, path_, msg));
}

const CheckpointItem* CheckpointReader::find(const std::string& tag) const {
  for (const auto& it : items_)
    if (it.tag == tag) return &it;
  return nullptr;
}

void CheckpointReader::read_into(const CheckpointItem& item, void* dst) const {
  auto* d = static_cast<unsigned char*>(dst);
  try {
    for (std::size_t k = item.first_entry; k < item.first_entry + item.entry_count; ++k) {
      const CheckpointEntry& e = entries_.at(k);
      if (map_)
        copy_large(d, map_->data() + e.content_offset, static_cast<std::size_t>(e.content_size));
      else
        file_->read_exact(e.content_offset, d, static_cast<std::size_t>(e.content_size));
      d += e.content_size;
    }
  } catch (const CheckpointError&) {
    throw;
  } catch (const FileError& e) {
    fail(CkptErrc::kIo, fmt::format("reading tag '{}': {}", item.tag, e.what()));
  } catch (const Error& e) {
    fail(CkptErrc::kTruncated, fmt::format("reading tag '{}': {}", item.tag, e.what()));
  }
}

Tensor CheckpointReader::read_tensor(const CheckpointItem& item) const {
  ANVIL_CHECK(item.kind == CheckpointItem::Kind::kTensor, "'{}' in '{}' is not a tensor entry", item.tag, path_);
  Tensor t = Tensor::empty(item.shape, item.dtype);
  read_into(item, t.data_ptr());
  return t;
}

std::string CheckpointReader::read_string(const CheckpointItem& item) const {
  ANVIL_CHECK(item.kind == CheckpointItem::Kind::kString, "'{}' in '{}' is not a string entry", item.tag, path_);
  std::string raw(static_cast<std::size_t>(item.nbytes), '\0');
  read_into(item, raw.data());
  std::string error;
  auto s = decode_utf32le(raw.data(), raw.size(), &error);
  if (!s)
    fail(CkptErrc::kBadString, fmt::format("tag '{}' (entry {}): {}", item.tag, item.first_entry, error));
  return *s;
}

}  // namespace anvil
