// libFuzzer target for the MindSpore checkpoint reader (built with clang when ANVIL_FUZZ=ON; see
// extra.cmake). Any input must end in success or a CheckpointError; anything else (a crash, a sanitizer
// report, another exception type, a leak) is a bug. Run: ckpt_reader_fuzzer CORPUS_DIR SEED_DIR...
#include <cstdint>
#include <cstddef>
#include "framework/core/Log.h"
#include "serialization/CheckpointReader.h"
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static bool once = [] { anvil::set_log_level(anvil::LogLevel::kError); return true; }();
  (void)once;
  try {
    anvil::CheckpointReader r("fuzz-input.ckpt", data, size, {});
    for (const auto& it : r.items()) {
      if (it.kind == anvil::CheckpointItem::Kind::kTensor) (void)r.read_tensor(it);
      else if (it.kind == anvil::CheckpointItem::Kind::kString) (void)r.read_string(it);
    }
  } catch (const anvil::CheckpointError&) {
  }
  return 0;
}
