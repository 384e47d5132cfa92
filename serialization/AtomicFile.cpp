#include "serialization/AtomicFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace anvil {
namespace {

std::string default_temp_path(const std::string& final_path) {
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path p(final_path);
  const std::string name = fmt::format(".{}.tmp-{}-{}", p.filename().string(), ::getpid(), counter++);
  return (p.parent_path() / name).string();
}

}  // namespace

AtomicFile::AtomicFile(std::string final_path, AtomicFileOptions options)
    : final_path_(std::move(final_path)), options_(std::move(options)) {
  ANVIL_CHECK(!final_path_.empty(), "empty path");
  temp_path_ = options_.temp_path.empty() ? default_temp_path(final_path_) : options_.temp_path;
  int fd;
  do {
    fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_file_error("create temporary file", temp_path_, errno);
  fd_ = UniqueFd(fd);
  buffer_.reserve(options_.buffer_bytes);
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept
    : final_path_(std::move(o.final_path_)),
      temp_path_(std::move(o.temp_path_)),
      options_(std::move(o.options_)),
      fd_(std::move(o.fd_)),
      buffer_(std::move(o.buffer_)),
      size_(o.size_),
      written_(o.written_),
      writeback_done_(o.writeback_done_),
      state_(o.state_) {
  o.state_ = State::kAborted;  // the moved-from object owns nothing
  o.temp_path_.clear();
}

AtomicFile::~AtomicFile() {
  if (state_ == State::kOpen) abort();
}

void AtomicFile::write_fd(const unsigned char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::write(fd_.get(), p, std::min<std::size_t>(n, std::size_t{1} << 30));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_file_error(fmt::format("write {} bytes at offset {} to", n, written_), temp_path_, errno);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
    written_ += static_cast<std::uint64_t>(r);
  }
  if (options_.writeback_bytes > 0 && written_ - writeback_done_ >= options_.writeback_bytes) start_writeback();
}

void AtomicFile::start_writeback() {
#ifdef SYNC_FILE_RANGE_WRITE
  // Asynchronous: only queues the dirty pages for writeback. Errors surface at fsync.
  (void)::sync_file_range(fd_.get(), static_cast<off_t>(writeback_done_),
                          static_cast<off_t>(written_ - writeback_done_), SYNC_FILE_RANGE_WRITE);
#endif
  writeback_done_ = written_;
}

void AtomicFile::flush_buffer() {
  if (buffer_.empty()) return;
  write_fd(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void AtomicFile::write(const void* data, std::size_t n) {
  ANVIL_CHECK(state_ == State::kOpen, "write to '{}' after finish/commit/abort", temp_path_);
  const auto* p = static_cast<const unsigned char*>(data);
  if (n == 0) return;
  if (buffer_.size() + n <= options_.buffer_bytes) {
    buffer_.insert(buffer_.end(), p, p + n);
  } else {
    flush_buffer();
    if (n < options_.buffer_bytes)
      buffer_.insert(buffer_.end(), p, p + n);
    else
      write_fd(p, n);  // large: straight from the caller's memory
  }
  size_ += n;
}

void AtomicFile::finish() {
  if (state_ == State::kFinished || state_ == State::kCommitted) return;
  ANVIL_CHECK(state_ == State::kOpen, "finish of '{}' after abort", temp_path_);
  flush_buffer();
  if (::fchmod(fd_.get(), static_cast<mode_t>(options_.mode)) != 0) throw_file_error("chmod", temp_path_, errno);
  if (options_.durable && ::fsync(fd_.get()) != 0) throw_file_error("fsync", temp_path_, errno);
  fd_.close_checked(temp_path_);
  state_ = State::kFinished;
}

void AtomicFile::commit() {
  if (state_ == State::kCommitted) return;
  finish();
  durable_rename(temp_path_, final_path_, options_.durable);
  state_ = State::kCommitted;
}

void AtomicFile::abort() noexcept {
  if (state_ == State::kCommitted || state_ == State::kAborted) return;
  fd_.reset();
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  state_ = State::kAborted;
}

void write_file_atomic(const std::string& path, std::string_view content, const AtomicFileOptions& options) {
  AtomicFile f(path, options);
  f.write(content);
  f.commit();
}

}  // namespace anvil
