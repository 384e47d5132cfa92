// OneDnnBackend: the default CPU backend, on oneDNN 2.6 (v2 operation-descriptor API).
//
// Derives from ReferenceBackend: ops oneDNN does not cover (and every kF64 call, which oneDNN 2.6
// cannot compute) fall through to the reference loops. Primitives are built once and cached by
// (op, shapes, attributes); primitives_created() counts cache misses so a test can prove that a
// second identical training step builds nothing.
#pragma once

#include <cstddef>
#include <memory>

#include "framework/backend/reference/ReferenceBackend.h"

namespace anvil {

class OneDnnBackend : public ReferenceBackend {
 public:
  OneDnnBackend();
  ~OneDnnBackend() override;
  std::string name() const override { return "onednn"; }

  /// Number of oneDNN primitives (including reorders) built so far; grows only on a cache miss.
  std::size_t primitives_created() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
