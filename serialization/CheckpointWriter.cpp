#include "serialization/CheckpointWriter.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "serialization/TensorType.h"

namespace anvil {
namespace {

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Bytes of one length-delimited field (key + length + payload) with a one-byte key.
std::uint64_t field_size(std::uint64_t payload) { return 1 + varint_size(payload) + payload; }

}  // namespace

CheckpointWriter::CheckpointWriter(std::string path, CheckpointWriterOptions options)
    : options_(std::move(options)), file_(std::move(path), options_.file) {
  ANVIL_CHECK(options_.slice_bytes > 0, "slice_bytes must be > 0 (file '{}')", file_.final_path());
}

void CheckpointWriter::check_tag(const std::string& tag) const {
  ANVIL_CHECK(!done_, "checkpoint '{}' is already finished; cannot add '{}'", file_.final_path(), tag);
  ANVIL_CHECK(!tag.empty(), "empty tag in checkpoint '{}'", file_.final_path());
  ANVIL_CHECK(is_valid_utf8(tag), "tag '{}' in checkpoint '{}' is not valid UTF-8", tag, file_.final_path());
  ANVIL_CHECK(tags_.count(tag) == 0, "tag '{}' is written twice to checkpoint '{}'", tag, file_.final_path());
}

void CheckpointWriter::put(const void* p, std::size_t n) {
  crc_.update(p, n);
  file_.write(p, n);
}

void CheckpointWriter::entry(const std::string& tag, const std::vector<std::int64_t>& dims, std::string_view type,
                             const unsigned char* content, std::uint64_t n) {
  std::uint64_t dims_bytes = 0;
  for (std::int64_t d : dims) dims_bytes += 1 + varint_size(static_cast<std::uint64_t>(d));
  const std::uint64_t tensor_bytes = dims_bytes + field_size(type.size()) + field_size(n);
  const std::uint64_t value_bytes = field_size(tag.size()) + field_size(tensor_bytes);

  std::string head;
  head.reserve(64 + tag.size() + dims.size() * 10);
  head.push_back(0x0A);  // Checkpoint.value
  put_varint(head, value_bytes);
  head.push_back(0x0A);  // Value.tag
  put_varint(head, tag.size());
  head += tag;
  head.push_back(0x12);  // Value.tensor
  put_varint(head, tensor_bytes);
  for (std::int64_t d : dims) {
    head.push_back(0x08);  // TensorProto.dims (unpacked, as MindSpore writes them)
    put_varint(head, static_cast<std::uint64_t>(d));
  }
  head.push_back(0x12);  // TensorProto.tensor_type
  put_varint(head, type.size());
  head.append(type);
  head.push_back(0x1A);  // TensorProto.tensor_content
  put_varint(head, n);
  put(head.data(), head.size());
  // Content in 1 MiB pieces: each is checksummed and handed to the kernel while still in cache.
  constexpr std::uint64_t kPiece = 1 << 20;
  for (std::uint64_t off = 0; off < n; off += kPiece) {
    const std::size_t k = static_cast<std::size_t>(std::min(kPiece, n - off));
    put(content + off, k);
  }
  ++entries_;
}

void CheckpointWriter::write_tensor(const std::string& tag, const Tensor& device_tensor) {
  check_tag(tag);
  ANVIL_CHECK(device_tensor.defined(), "tag '{}': undefined tensor (checkpoint '{}')", tag, file_.final_path());
  // A tensor in device memory is copied to the host one at a time (bytes unchanged), so the file is the
  // same whichever device trained the network.
  const Tensor tensor = device_tensor.device().is_cpu() ? device_tensor : device_tensor.to(Device::cpu());
  const std::string_view type = ms_tensor_type(tensor.dtype());
  std::vector<std::int64_t> dims = tensor.shape().dims();
  if (dims.empty() && options_.legacy_scalar_dims) dims = {0};
  const auto* data = static_cast<const unsigned char*>(tensor.data_ptr());
  const std::uint64_t nbytes = tensor.nbytes();
  const std::uint64_t esize = dtype_size(tensor.dtype());
  const std::uint64_t numel = static_cast<std::uint64_t>(tensor.numel());
  tags_.insert(tag);
  if (nbytes <= options_.slice_bytes) {
    entry(tag, dims, type, data, nbytes);
    return;
  }
  // numpy.array_split over the flattened elements: n near-equal parts, the first numel % n one longer.
  const std::uint64_t parts = (nbytes + options_.slice_bytes - 1) / options_.slice_bytes;
  const std::uint64_t base = numel / parts, extra = numel % parts;
  std::uint64_t elem = 0;
  for (std::uint64_t i = 0; i < parts; ++i) {
    const std::uint64_t count = base + (i < extra ? 1 : 0);
    entry(tag, dims, type, data + elem * esize, count * esize);
    elem += count;
  }
}

void CheckpointWriter::write_string(const std::string& tag, std::string_view utf8) {
  check_tag(tag);
  std::string content;
  try {
    content = encode_utf32le(utf8);
  } catch (const Error& e) {
    ANVIL_THROW("tag '{}' (checkpoint '{}'): {}", tag, file_.final_path(), e.what());
  }
  tags_.insert(tag);
  entry(tag, {0}, "str", reinterpret_cast<const unsigned char*>(content.data()), content.size());
}

void CheckpointWriter::write_raw_entry(const std::string& tag, const std::vector<std::int64_t>& dims,
                                       std::string_view tensor_type, const void* content, std::size_t content_bytes) {
  ANVIL_CHECK(!done_, "checkpoint '{}' is already finished; cannot add '{}'", file_.final_path(), tag);
  tags_.insert(tag);
  entry(tag, dims, tensor_type, static_cast<const unsigned char*>(content), content_bytes);
}

CheckpointFileInfo CheckpointWriter::complete(bool rename) {
  ANVIL_CHECK(!done_, "checkpoint '{}' is already finished", file_.final_path());
  done_ = true;  // also after a failure below: the file is then abandoned (removed on destruction)
  CheckpointFileInfo info;
  info.data_crc32 = crc_.value();
  info.entries = entries_;
  if (options_.crc_check) {
    unsigned char t[17] = {'c', 'r', 'c', '_', 'n', 'u', 'm', 0, 0, 0, 0, 0, 0};
    const std::uint32_t c = crc_.value();
    t[13] = static_cast<unsigned char>(c >> 24);
    t[14] = static_cast<unsigned char>(c >> 16);
    t[15] = static_cast<unsigned char>(c >> 8);
    t[16] = static_cast<unsigned char>(c);
    put(t, sizeof t);
    info.has_trailer = true;
  }
  info.crc32 = crc_.value();
  info.bytes = file_.size();
  if (rename) {
    file_.commit();
    info.path = file_.final_path();
  } else {
    file_.finish();
    info.path = file_.temp_path();
  }
  return info;
}

CheckpointFileInfo CheckpointWriter::commit() { return complete(true); }
CheckpointFileInfo CheckpointWriter::finish() { return complete(false); }

}  // namespace anvil
