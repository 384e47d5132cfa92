#include "callbacks/TfRecord.h"

#include <array>
#include <cstring>

namespace anvil::tfrecord {
namespace {

std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes_field(std::string& out, int field, std::string_view bytes) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | 2u);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_header(std::string& out, double wall_time, std::int64_t step) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &wall_time, sizeof bits);
  put_varint(out, 1u << 3 | 1u);  // wall_time, fixed64
  put_le(out, bits, 8);
  put_varint(out, 2u << 3 | 0u);  // step, varint (two's complement for negatives)
  put_varint(out, static_cast<std::uint64_t>(step));
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = make_table();
  crc = ~crc;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t mask_crc(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string frame_record(std::string_view data) {
  std::string out;
  std::string len;
  put_le(len, data.size(), 8);
  out += len;
  put_le(out, mask_crc(crc32c(len)), 4);
  out.append(data);
  put_le(out, mask_crc(crc32c(data)), 4);
  return out;
}

std::string encode_file_version_event(double wall_time, std::int64_t step, const std::string& file_version) {
  std::string out;
  put_header(out, wall_time, step);
  put_bytes_field(out, 3, file_version);
  return out;
}

std::string encode_scalars_event(double wall_time, std::int64_t step,
                                 const std::vector<std::pair<std::string, float>>& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes_field(v, 1, tag);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    put_varint(v, 2u << 3 | 5u);  // simple_value, fixed32
    put_le(v, bits, 4);
    put_bytes_field(summary, 1, v);
  }
  std::string out;
  put_header(out, wall_time, step);
  put_bytes_field(out, 5, summary);
  return out;
}

}  // namespace anvil::tfrecord
