#include "serialization/CheckpointError.h"

#include <fmt/format.h>

namespace anvil {

std::string_view ckpt_errc_name(CkptErrc code) {
  switch (code) {
    case CkptErrc::kNotFound: return "CKPT_NOT_FOUND";
    case CkptErrc::kEmpty: return "CKPT_EMPTY";
    case CkptErrc::kEncrypted: return "CKPT_ENCRYPTED";
    case CkptErrc::kCrcMismatch: return "CKPT_CRC_MISMATCH";
    case CkptErrc::kNotACheckpoint: return "CKPT_NOT_A_CHECKPOINT";
    case CkptErrc::kTruncated: return "CKPT_TRUNCATED";
    case CkptErrc::kMalformed: return "CKPT_MALFORMED";
    case CkptErrc::kNoEntries: return "CKPT_NO_ENTRIES";
    case CkptErrc::kBadDtype: return "CKPT_BAD_DTYPE";
    case CkptErrc::kSizeMismatch: return "CKPT_SIZE_MISMATCH";
    case CkptErrc::kSliceMismatch: return "CKPT_SLICE_MISMATCH";
    case CkptErrc::kBadString: return "CKPT_BAD_STRING";
    case CkptErrc::kDuplicateTag: return "CKPT_DUPLICATE_TAG";
    case CkptErrc::kUnsupported: return "CKPT_UNSUPPORTED";
    case CkptErrc::kUnverified: return "CKPT_UNVERIFIED";
    case CkptErrc::kIo: return "CKPT_IO";
    case CkptErrc::kFiltered: return "CKPT_EMPTY_AFTER_FILTER";
  }
  return "CKPT_UNKNOWN";
}

void throw_ckpt_error(const char* function, CkptErrc code, const std::string& path, const std::string& detail) {
  throw CheckpointError(code, path,
                        fmt::format("{}: {}: checkpoint file '{}': {}", function, ckpt_errc_name(code), path, detail));
}

}  // namespace anvil
