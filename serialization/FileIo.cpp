#include "serialization/FileIo.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace anvil {

FileError::FileError(std::string operation, std::string path, int error_number)
    : Error(fmt::format("{} '{}': {}", operation, path, std::strerror(error_number))),
      operation_(std::move(operation)),
      path_(std::move(path)),
      errno_(error_number) {}

void throw_file_error(std::string_view operation, const std::string& path, int error_number) {
  throw FileError(std::string(operation), path, error_number);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

int UniqueFd::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void UniqueFd::close_checked(const std::string& path) {
  if (fd_ < 0) return;
  const int fd = release();
  // POSIX leaves the descriptor state unspecified after EINTR; Linux always frees it, so never retry.
  if (::close(fd) != 0 && errno != EINTR) throw_file_error("close", path, errno);
}

ReadOnlyFile::ReadOnlyFile(std::string path) : path_(std::move(path)) {
  int fd;
  do {
    fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_file_error("open", path_, errno);
  fd_ = UniqueFd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_file_error("fstat", path_, errno);
  if (!S_ISREG(st.st_mode)) throw_file_error("open (not a regular file)", path_, EINVAL);
  size_ = static_cast<std::uint64_t>(st.st_size);
}

void ReadOnlyFile::read_exact(std::uint64_t offset, void* dst, std::size_t n) const {
  auto* p = static_cast<unsigned char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    // Linux transfers at most 0x7ffff000 bytes per call.
    const std::size_t want = std::min<std::size_t>(n - done, std::size_t{1} << 30);
    const ssize_t r = ::pread(fd_.get(), p + done, want, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_file_error(fmt::format("read {} bytes at offset {} of", want, offset + done), path_, errno);
    }
    if (r == 0)
      throw Error(fmt::format("read '{}': file ended at offset {} while reading {} bytes at offset {} (did it "
                              "shrink while being read?)",
                              path_, offset + done, n, offset));
    done += static_cast<std::size_t>(r);
  }
}

void MemorySource::read_exact(std::uint64_t offset, void* dst, std::size_t n) const {
  if (offset > size_ || n > size_ - offset)
    throw Error(fmt::format("read of {} bytes at offset {} past the end of a {}-byte buffer", n, offset, size_));
  if (n) std::memcpy(dst, data_ + offset, n);
}

MappedRegion::MappedRegion(int fd, const std::string& path, std::uint64_t offset, std::uint64_t length)
    : length_(length) {
  if (length == 0) return;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = offset / page * page;
  mapped_ = static_cast<std::size_t>(offset - start + length);
  base_ = ::mmap(nullptr, mapped_, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    throw_file_error(fmt::format("mmap {} bytes at offset {} of", length, offset), path, errno);
  }
  (void)::madvise(base_, mapped_, MADV_SEQUENTIAL);
  data_ = static_cast<const unsigned char*>(base_) + (offset - start);
}

MappedRegion::~MappedRegion() {
  if (base_) ::munmap(base_, mapped_);
}

MappedRegion::MappedRegion(MappedRegion&& o) noexcept
    : base_(o.base_), mapped_(o.mapped_), data_(o.data_), length_(o.length_) {
  o.base_ = nullptr;
  o.data_ = nullptr;
  o.mapped_ = 0;
  o.length_ = 0;
}

void fsync_directory(const std::string& directory) {
  int fd;
  do {
    fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_file_error("open directory", directory, errno);
  UniqueFd owner(fd);
  if (::fsync(fd) != 0 && errno != EINVAL)  // EINVAL: the file system cannot sync directories
    throw_file_error("fsync directory", directory, errno);
  owner.close_checked(directory);
}

void durable_rename(const std::string& from, const std::string& to, bool sync_directory) {
  if (::rename(from.c_str(), to.c_str()) != 0) throw_file_error(fmt::format("rename '{}' to", from), to, errno);
  if (sync_directory) fsync_directory(parent_directory(to));
}

std::string parent_directory(const std::string& path) {
  const std::filesystem::path p(path);
  const auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace anvil
