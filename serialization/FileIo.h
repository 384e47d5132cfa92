// Files and system calls for the serialization layer: the single boundary where errno becomes an
// anvil::Error (FileError naming the operation, the path and strerror), RAII file descriptors, and the
// durable-rename primitives that AtomicFile and the checkpoint writers build on.
//
// Everything here is format-agnostic, for reuse by every checkpoint format (MindSpore .ckpt, OneFlow
// variable directories, manifests, latest pointers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/core/Error.h"

namespace anvil {

/// A failed system call on a file. what() = "<operation> '<path>': <strerror(errno)>".
class FileError : public Error {
 public:
  FileError(std::string operation, std::string path, int error_number);
  const std::string& operation() const { return operation_; }
  const std::string& path() const { return path_; }
  /// The errno value of the failed call.
  int error_number() const { return errno_; }

 private:
  std::string operation_;
  std::string path_;
  int errno_;
};

/// Throws FileError(operation, path, error_number). The one place errno turns into an exception.
[[noreturn]] void throw_file_error(std::string_view operation, const std::string& path, int error_number);

/// Owns a POSIX file descriptor; closes it on destruction. Movable, not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Gives up ownership and returns the descriptor.
  int release() noexcept;
  /// Closes the descriptor (errors ignored: use close_checked() where a close error matters).
  void reset() noexcept;
  /// Closes the descriptor; throws FileError naming `path` when close() fails (e.g. deferred EIO).
  void close_checked(const std::string& path);

 private:
  int fd_ = -1;
};

/// Random-access bytes (a file, or memory): what readers of checkpoint formats parse.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Total size in bytes.
  virtual std::uint64_t size() const = 0;
  /// Reads exactly n bytes at `offset` into dst; throws anvil::Error (FileError for I/O) otherwise.
  virtual void read_exact(std::uint64_t offset, void* dst, std::size_t n) const = 0;
};

/// A regular file opened read-only, read with pread at explicit offsets (thread-compatible: reads do
/// not move a shared position).
class ReadOnlyFile : public ByteSource {
 public:
  /// Opens `path`. Throws FileError when open() fails or the path is not a regular file.
  explicit ReadOnlyFile(std::string path);
  const std::string& path() const { return path_; }
  /// Size at open time, in bytes.
  std::uint64_t size() const override { return size_; }
  /// Reads exactly n bytes at `offset` into dst. Throws FileError on a read error and anvil::Error
  /// naming the path, offset and count when the file ends early (it shrank after open).
  void read_exact(std::uint64_t offset, void* dst, std::size_t n) const override;
  int fd() const { return fd_.get(); }

 private:
  std::string path_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
};

/// A read-only memory mapping of [offset, offset + length) of an open file (MAP_SHARED, advised for
/// sequential access). Caveat of every mapping: if another process truncates the file while it is
/// mapped, touching the lost pages raises SIGBUS — use it only for files that are replaced by rename,
/// never truncated in place (as checkpoints are). Movable, not copyable.
class MappedRegion {
 public:
  /// Maps the range; throws FileError naming `path` when mmap fails. length may be 0 (no mapping).
  MappedRegion(int fd, const std::string& path, std::uint64_t offset, std::uint64_t length);
  ~MappedRegion();
  MappedRegion(MappedRegion&& o) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  MappedRegion& operator=(MappedRegion&&) = delete;
  const unsigned char* data() const { return data_; }
  std::uint64_t size() const { return length_; }

 private:
  void* base_ = nullptr;          // page-aligned start of the mapping
  std::size_t mapped_ = 0;        // bytes mapped from base_
  const unsigned char* data_ = nullptr;
  std::uint64_t length_ = 0;
};

/// A ByteSource over caller-owned memory (which must outlive it).
class MemorySource : public ByteSource {
 public:
  MemorySource(const void* data, std::size_t size) : data_(static_cast<const unsigned char*>(data)), size_(size) {}
  std::uint64_t size() const override { return size_; }
  const unsigned char* data() const { return data_; }
  /// Throws anvil::Error when [offset, offset + n) is not inside the buffer.
  void read_exact(std::uint64_t offset, void* dst, std::size_t n) const override;

 private:
  const unsigned char* data_;
  std::size_t size_;
};

/// fsync()s a directory so that renames and creations inside it survive a crash.
/// Throws FileError naming the directory.
void fsync_directory(const std::string& directory);

/// Renames `from` to `to` atomically (same file system; replaces `to`), then fsyncs the directory
/// of `to` when `sync_directory`. Throws FileError naming both paths.
void durable_rename(const std::string& from, const std::string& to, bool sync_directory = true);

/// The directory part of `path` ("." when it has none).
std::string parent_directory(const std::string& path);

}  // namespace anvil
