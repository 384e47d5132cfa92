#include "framework/core/Error.h"

namespace anvil::detail {

void throw_error(const char* function, const std::string& message) {
  throw Error(std::string(function) + ": " + message);
}

}  // namespace anvil::detail
