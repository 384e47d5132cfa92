#include "framework/train/RunContext.h"

#include "framework/core/Error.h"

namespace anvil {

const std::any& RunContext::get(const std::string& key) const {
  auto it = user_.find(key);
  if (it == user_.end()) {
    std::string keys;
    for (const auto& [k, v] : user_) keys += (keys.empty() ? "'" : ", '") + k + "'";
    throw Error(fmt::format("RunContext::get: no user key '{}' (keys: {})", key, keys.empty() ? "none" : keys));
  }
  return it->second;
}

void RunContext::throw_wrong_type(const std::string& key, const std::any& value) {
  throw Error(fmt::format("RunContext::get_as: user key '{}' holds a value of another type ({})", key,
                          value.type().name()));
}

}  // namespace anvil
