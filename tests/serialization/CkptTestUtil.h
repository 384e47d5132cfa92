// Helpers shared by the serialization tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framework/nn/Cell.h"
#include "serialization/CheckpointError.h"
#include "tests/testutil/Paths.h"

namespace anvil::testutil {

inline std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const unsigned char* data, std::size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

inline void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  write_bytes(path, bytes.data(), bytes.size());
}

inline std::string ms_fixture(const std::string& name) { return fixtures_dir() + "/mindspore/" + name; }

/// A cell whose parameters, buffers and children are added from outside (tests only).
class TestCell : public nn::Cell {
 public:
  Tensor forward(const Tensor&) override { throw Error("TestCell has no forward"); }
  std::string type_name() const override { return "TestCell"; }
  Tensor param(const std::string& name, Tensor value, bool requires_grad = true) {
    const bool rg = requires_grad && is_compute_type(value.dtype());
    return register_parameter(name, std::move(value), rg);
  }
  Tensor buffer(const std::string& name, Tensor value) { return register_buffer(name, std::move(value)); }
  template <typename C>
  std::shared_ptr<C> child(const std::string& name, std::shared_ptr<C> c) {
    return register_cell(name, std::move(c));
  }
};

/// Runs `f`, expects a CheckpointError with `code` whose message names `path`; returns the message.
template <typename F>
std::string expect_ckpt_error(F&& f, CkptErrc code, const std::string& path) {
  try {
    f();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(ckpt_errc_name(e.code()), ckpt_errc_name(code)) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected CheckpointError " << ckpt_errc_name(code) << ", got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected CheckpointError " << ckpt_errc_name(code) << ", nothing thrown";
  return {};
}

/// Deterministic pseudo-random bytes.
inline void fill_pattern(void* p, std::size_t n, std::uint64_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = static_cast<unsigned char>(x >> 24);
  }
}

}  // namespace anvil::testutil
