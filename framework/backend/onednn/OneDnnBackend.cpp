#include "framework/backend/onednn/OneDnnBackend.h"

namespace anvil {

struct OneDnnBackend::Impl {
  std::size_t created = 0;
};

OneDnnBackend::OneDnnBackend() : impl_(std::make_unique<Impl>()) {}
OneDnnBackend::~OneDnnBackend() = default;
std::size_t OneDnnBackend::primitives_created() const { return impl_->created; }

}  // namespace anvil
