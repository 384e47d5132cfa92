// CheckpointWriter: streams a MindSpore .ckpt file entry by entry, crash-safely.
//
// Each call appends one canonical entry (specs/mindspore-ckpt.md §2): `0A len Value` with Value =
// `0A len tag  12 len TensorProto`, TensorProto = one `08 dim` per dimension, `12 len type`,
// `1A len content`. Tensor bytes go from the tensor's memory to the file without an intermediate copy
// (the file is never assembled in memory), and a CRC-32 of everything written is kept on the way.
// Tensors larger than `slice_bytes` are split like numpy.array_split over the flattened elements into
// ceil(nbytes / slice_bytes) consecutive entries with the same tag, full dims and type.
//
// The file is written through an AtomicFile (temporary in the same directory, fsync, rename, fsync of
// the directory): until commit() the final path keeps its previous content. With `crc_check` (the
// default, a deliberate deviation from MindSpore's off) the 17-byte "crc_num" trailer is appended;
// MindSpore >= 2.3 reads such files, older MindSpore does not (turn it off for those consumers).
//
// Not thread-safe. Errors: anvil::Error naming the tag (invalid input, checked before anything of that
// entry is written) or FileError naming the path (I/O). After an error, the temporary file is removed
// when the writer is destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "framework/tensor/Tensor.h"
#include "serialization/AtomicFile.h"
#include "serialization/Crc32.h"

namespace anvil {

/// MindSpore's slice threshold: tensors with more bytes than this are split (512 MiB).
inline constexpr std::uint64_t kDefaultSliceBytes = 536870912;

struct CheckpointWriterOptions {
  bool crc_check = true;             // append the crc_num integrity trailer
  bool legacy_scalar_dims = false;   // write 0-d tensors with dims [0] (MindSpore <= 2.2 readers)
  std::uint64_t slice_bytes = kDefaultSliceBytes;  // split tensors larger than this; > 0
  // Durable, read-only (0400, as MindSpore >= 2.4 sets it).
  AtomicFileOptions file = {.durable = true, .mode = 0400, .temp_path = {}, .buffer_bytes = 1 << 20,
                            .writeback_bytes = 64ull << 20};
};

/// What a finished checkpoint file holds (e.g. for a manifest).
struct CheckpointFileInfo {
  std::string path;              // the final path (commit) or the temporary path (finish)
  std::uint64_t bytes = 0;       // file size, trailer included
  std::uint32_t crc32 = 0;       // CRC-32 of the whole file (what a manifest records)
  std::uint32_t data_crc32 = 0;  // CRC-32 of the bytes before the trailer (the trailer's value)
  std::uint64_t entries = 0;     // top-level entries (each slice counts)
  bool has_trailer = false;
};

class CheckpointWriter {
 public:
  /// Starts writing `path` (used as given: no suffix is added). Throws FileError when the temporary
  /// file cannot be created, anvil::Error when options.slice_bytes is 0.
  explicit CheckpointWriter(std::string path, CheckpointWriterOptions options = {});

  /// Appends `tensor` under `tag`. Preconditions (anvil::Error naming the tag otherwise, nothing
  /// written): tag non-empty, valid UTF-8, not written before; tensor defined. A tensor in device
  /// (GPU) memory is copied to the host first, so the bytes do not depend on the training device.
  /// Any DType is stored with its MindSpore tensor_type; 0-d tensors get no dims (see legacy option).
  void write_tensor(const std::string& tag, const Tensor& tensor);
  /// Appends a MindSpore string entry (type "str", dims [0], UTF-32LE). Throws for invalid UTF-8.
  void write_string(const std::string& tag, std::string_view utf8);
  /// Appends one entry exactly as given (dims as stored, any type string, raw content): for tools that
  /// re-encode existing files. No duplicate-tag check (a repeated tag right after itself is a slice).
  void write_raw_entry(const std::string& tag, const std::vector<std::int64_t>& dims, std::string_view tensor_type,
                       const void* content, std::size_t content_bytes);

  /// Entries written so far (each slice counts).
  std::uint64_t entries() const { return entries_; }
  /// Bytes written so far (no trailer yet).
  std::uint64_t bytes() const { return file_.size(); }

  /// Appends the trailer (if crc_check), fsyncs, renames onto the final path, fsyncs the directory.
  CheckpointFileInfo commit();
  /// Like commit() but leaves the complete file under temp_path() (no rename): for protocols that
  /// rename several files themselves (ModelCheckpoint's manifest-then-data commit).
  CheckpointFileInfo finish();
  /// Drops the temporary file. Never throws.
  void abort() noexcept { file_.abort(); }
  const std::string& temp_path() const { return file_.temp_path(); }
  const std::string& final_path() const { return file_.final_path(); }

 private:
  void check_tag(const std::string& tag) const;
  void put(const void* p, std::size_t n);
  void entry(const std::string& tag, const std::vector<std::int64_t>& dims, std::string_view type,
             const unsigned char* content, std::uint64_t n);
  CheckpointFileInfo complete(bool rename);

  CheckpointWriterOptions options_;
  AtomicFile file_;
  Crc32 crc_;
  std::uint64_t entries_ = 0;
  std::unordered_set<std::string> tags_;
  bool done_ = false;
};

}  // namespace anvil
