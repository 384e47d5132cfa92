// TFRecord framing and the TensorBoard Event protobuf, hand-encoded (used by TensorBoard).
//
// Open formats followed: TensorFlow's TFRecord format (tensorflow/core/lib/io/record_writer.cc):
//   u64 LE length | u32 LE masked_crc32c(length bytes) | data | u32 LE masked_crc32c(data)
//   masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), c = CRC-32C (Castagnoli) of x;
// and tensorflow/core/util/event.proto + summary.proto (proto3 wire format):
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anvil::tfrecord {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, continuing from `crc` (0 to start).
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);
/// TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8.
std::uint32_t mask_crc(std::uint32_t crc);
/// `data` framed as one TFRecord (length, masked length CRC, data, masked data CRC).
std::string frame_record(std::string_view data);
/// An Event with wall_time, step and file_version (the first record of an events file).
std::string encode_file_version_event(double wall_time, std::int64_t step, const std::string& file_version);
/// An Event with wall_time, step and a Summary of simple_value scalars {tag, value}.
std::string encode_scalars_event(double wall_time, std::int64_t step,
                                 const std::vector<std::pair<std::string, float>>& scalars);

}  // namespace anvil::tfrecord
