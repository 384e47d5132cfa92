// AtomicFile: writes a file so that, whatever happens (exception, SIGKILL, power loss), the final path
// holds either its previous content or the complete new content — never a torn mix.
//
// Protocol: the data goes to a temporary file in the SAME directory as the final path (so rename() is
// atomic), created with O_EXCL; finish() applies the final permission bits, fsyncs and closes it;
// commit() renames it over the final path and fsyncs the directory. A temporary left by a crash is a
// dot-file whose name ends in ".tmp-<pid>-<n>" (never ".ckpt", so MindSpore's directory scans ignore it).
//
// Large writes go straight from the caller's buffer to the kernel (no copy); small ones are
// coalesced in an internal buffer. Every `writeback_bytes` the kernel is asked to start writing back
// what it has (sync_file_range), so the device works while the caller produces the rest and the
// final fsync has little left to do.
//
// Format-agnostic: used for .ckpt files, manifests and pointer files, and meant for any other format.
// Not thread-safe. Errors: FileError (see FileIo.h) naming the operation and the temporary or final path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "serialization/FileIo.h"

namespace anvil {

struct AtomicFileOptions {
  bool durable = true;             // fsync the file before the rename and the directory after it
  unsigned mode = 0644;            // permission bits of the final file (umask is not applied)
  std::string temp_path{};         // explicit temporary path (must be in the final path's directory);
                                   // empty = "<dir>/.<name>.tmp-<pid>-<n>"
  std::size_t buffer_bytes = 1 << 20;          // coalescing buffer for small writes
  std::uint64_t writeback_bytes = 64ull << 20;  // start background writeback every N bytes; 0 = never
};

class AtomicFile {
 public:
  /// Creates the temporary file. Preconditions: the directory of `final_path` exists and is writable.
  /// Throws FileError naming the temporary path when it cannot be created (also when it exists).
  explicit AtomicFile(std::string final_path, AtomicFileOptions options = {});
  /// Not committed: closes and removes the temporary file (never throws).
  ~AtomicFile();
  AtomicFile(AtomicFile&&) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends n bytes. Precondition: neither finish() nor commit() nor abort() was called.
  /// Throws FileError (e.g. ENOSPC) naming the temporary path; the object can then only be abort()ed.
  void write(const void* data, std::size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

  /// Bytes appended so far.
  std::uint64_t size() const { return size_; }
  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }

  /// Writes out the buffer, sets the mode, fsyncs (when durable) and closes the temporary file, which
  /// stays under temp_path(): for protocols that rename several files themselves (durable_rename()).
  /// After finish(), the destructor no longer removes the temporary file. Idempotent.
  void finish();
  /// finish() if not done, then renames the temporary file over final_path() and fsyncs the
  /// directory (when durable). The commit point is the rename.
  void commit();
  /// Closes and removes the temporary file (no-op after commit()). Never throws.
  void abort() noexcept;

 private:
  void flush_buffer();
  void write_fd(const unsigned char* p, std::size_t n);
  void start_writeback();

  std::string final_path_;
  std::string temp_path_;
  AtomicFileOptions options_;
  UniqueFd fd_;
  std::vector<unsigned char> buffer_;
  std::uint64_t size_ = 0;           // bytes appended (buffered or written)
  std::uint64_t written_ = 0;        // bytes handed to the kernel
  std::uint64_t writeback_done_ = 0; // bytes for which writeback was started
  enum class State { kOpen, kFinished, kCommitted, kAborted } state_ = State::kOpen;
};

/// Writes `content` to `path` through an AtomicFile (temp, fsync, rename, fsync dir): for small files
/// such as manifests and "latest" pointers. Throws FileError.
void write_file_atomic(const std::string& path, std::string_view content, const AtomicFileOptions& options = {});

}  // namespace anvil
