// CheckpointReader: opens a MindSpore .ckpt file, validates it and reads its entries on demand.
//
// Construction runs every check of specs/mindspore-ckpt.md §9 in order — existence, empty file,
// encryption magic, integrity trailer (CRC-32 verified whenever present), a streaming structural parse
// of every entry (entry headers only: tensor contents are skipped, never loaded), "no entries", then
// per-tensor checks (tensor_type, sizes, slices) and the integrity status (trailer, sidecar manifest,
// or unverified). Afterwards, read_into() copies one tensor's bytes straight into caller memory (e.g.
// a network parameter's buffer), so memory never holds more than what the caller asked for.
//
// The file is parsed entry by entry with our own wire decoder, not as one protobuf message: files may
// exceed protobuf's 2 GiB limit, and every error must name the entry index and byte offset. The reader
// accepts canonical MindSpore entries, packed dims, any field order, legacy scalars (dims [0]),
// "Uint8".."Uint64", a v0.5 top-level model_type, and slices (consecutive entries with one tag).
//
// Every failure is a CheckpointError (CheckpointError.h) whose message names the file, and where it
// applies the entry index, tag, byte offset, dims and types. The reader never crashes on bad input.
//
// Thread-compatible: distinct readers are independent; one reader's const methods may run
// concurrently (reads use pread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/core/DType.h"
#include "framework/core/Shape.h"
#include "framework/tensor/Tensor.h"
#include "serialization/CheckpointError.h"
#include "serialization/FileIo.h"

namespace anvil {

/// How a checkpoint's completeness was established.
enum class Integrity {
  kVerifiedCrc,       // "verified-crc": the crc_num trailer matched
  kVerifiedManifest,  // "verified-manifest": <file>.manifest.json matched size, CRC-32 and entry count
  kUnverified,        // "unverified": neither; a cut between two entries cannot be ruled out
};
/// "verified-crc", "verified-manifest", "unverified".
std::string_view integrity_name(Integrity integrity);

/// Files at least this large are memory-mapped for reading (ReaderOptions::use_mmap).
inline constexpr std::uint64_t kMapThresholdBytes = 32ull << 20;

/// Size of the crc_num trailer: "crc_num" + a 10-byte big-endian CRC.
inline constexpr std::size_t kCrcTrailerBytes = 17;

struct ReaderOptions {
  /// Strict: a tag repeated non-adjacently, or a map tensor, is an error (compat: warning; the later
  /// entry wins, map tensors are skipped).
  bool strict = false;
  /// Throw CKPT_UNVERIFIED unless a trailer or manifest proves the file complete.
  bool require_integrity = false;
  /// Log the "no integrity trailer or manifest" warning for unverified files (when not required).
  bool warn_unverified = true;
  /// Sidecar manifest to verify; empty = "<path>.manifest.json" if that file exists.
  std::string manifest_path{};
  /// Read files of kMapThresholdBytes or more through a read-only memory mapping (faster checksum and
  /// copies). Caveat: if another process truncates the file in place while it is being read, the
  /// process gets SIGBUS; turn this off for files that may be truncated concurrently. (Checkpoints are
  /// replaced by rename, never truncated, by Anvil and MindSpore alike.)
  bool use_mmap = true;
  /// Function name that starts every error message ("load_checkpoint", "anvil ckpt verify", ...).
  std::string context = "CheckpointReader";
};

/// One top-level entry as stored in the file.
struct CheckpointEntry {
  std::size_t index = 0;               // 0-based entry number
  std::uint64_t offset = 0;            // byte offset of the entry's 0x0A key
  std::uint64_t end = 0;               // one past the entry's last byte
  std::string tag{};
  bool map_tensor = false;             // Value.maptensor instead of Value.tensor
  std::vector<std::int64_t> dims{};    // as stored (tensor entries)
  std::string tensor_type{};           // as stored (tensor entries)
  std::uint64_t content_offset = 0;    // absolute offset of tensor_content's bytes
  std::uint64_t content_size = 0;
};

/// A logical checkpoint value: one entry, or consecutive same-tag slices joined.
struct CheckpointItem {
  enum class Kind { kTensor, kString, kMapTensor };
  std::string tag{};
  Kind kind = Kind::kTensor;
  DType dtype = DType::kF32;           // kTensor only
  Shape shape{};                         // kTensor: dims [] and legacy scalar [0] give rank 0
  std::vector<std::int64_t> stored_dims{};
  std::string tensor_type{};
  std::uint64_t nbytes = 0;            // joined content size
  std::size_t first_entry = 0;         // index into entries()
  std::size_t entry_count = 1;         // > 1 when sliced
};

class CheckpointReader {
 public:
  /// Opens and validates `path` (see the file comment). Throws CheckpointError.
  explicit CheckpointReader(std::string path, ReaderOptions options = {});
  /// Validates checkpoint bytes held in memory (which must outlive the reader); `name` stands for the
  /// path in messages. No manifest is consulted unless options.manifest_path names one.
  CheckpointReader(std::string name, const void* data, std::size_t size, ReaderOptions options = {});
  ~CheckpointReader();
  CheckpointReader(CheckpointReader&&) noexcept;
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }
  /// Bytes before the trailer (file_size() without a trailer).
  std::uint64_t data_size() const { return data_size_; }
  bool has_trailer() const { return has_trailer_; }
  /// The trailer's CRC (when has_trailer()).
  std::uint32_t stored_crc() const { return stored_crc_; }
  Integrity integrity() const { return integrity_; }
  /// Every top-level entry in file order (map tensors included).
  const std::vector<CheckpointEntry>& entries() const { return entries_; }
  /// Logical values in file order (a repeated tag keeps its first position and the later value);
  /// map tensors are left out in compat mode (see skipped()).
  const std::vector<CheckpointItem>& items() const { return items_; }
  /// Tags of map tensors skipped in compat mode.
  const std::vector<std::string>& skipped() const { return skipped_; }
  /// Non-fatal findings (already logged as warnings): duplicate tags, skipped map tensors, unverified.
  const std::vector<std::string>& warnings() const { return warnings_; }
  /// True when the v0.5 top-level model_type field was present (its value in model_type()).
  const std::optional<std::string>& model_type() const { return model_type_; }
  /// The item with this tag, or nullptr.
  const CheckpointItem* find(const std::string& tag) const;

  /// Copies the item's content (all slices, in order) into dst, which must hold item.nbytes bytes.
  /// Precondition: item comes from items(). Throws CheckpointError (CKPT_IO / CKPT_TRUNCATED when the
  /// file changed since it was opened).
  void read_into(const CheckpointItem& item, void* dst) const;
  /// A new tensor (item.dtype, item.shape) holding the item. Precondition: kind == kTensor.
  Tensor read_tensor(const CheckpointItem& item) const;
  /// The decoded string of a kString item. Throws CKPT_BAD_STRING for invalid UTF-32LE.
  std::string read_string(const CheckpointItem& item) const;

 private:
  [[noreturn]] void fail(CkptErrc code, const std::string& detail) const;
  void open_and_validate(bool is_file);
  void check_header(bool is_file);
  void verify_trailer(std::uint32_t* whole_file_crc, bool need_whole_crc);
  void parse_entries();
  void build_items();
  void establish_integrity(const std::optional<std::uint32_t>& whole_crc);

  std::string path_;
  ReaderOptions options_;
  std::unique_ptr<ByteSource> file_;
  std::unique_ptr<MappedRegion> map_;  // whole file, when mapped
  std::uint64_t file_size_ = 0;
  std::uint64_t data_size_ = 0;
  bool has_trailer_ = false;
  std::uint32_t stored_crc_ = 0;
  Integrity integrity_ = Integrity::kUnverified;
  std::vector<CheckpointEntry> entries_;
  std::vector<CheckpointItem> items_;
  std::vector<std::string> skipped_;
  std::vector<std::string> warnings_;
  std::optional<std::string> model_type_;
};

}  // namespace anvil
