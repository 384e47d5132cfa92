// CheckpointError: the anvil::Error every checkpoint reader/writer failure throws, with a stable code.
//
// Codes follow specs/mindspore-ckpt.md §9, plus a few for the cases the spec folds into prose. The code
// is part of the message ("load_checkpoint: CKPT_TRUNCATED: checkpoint file '/x/a.ckpt': entry 4 at
// offset 202828 declares 1200 bytes, 3 remain"), so a user sees it, and code() lets programs (the CLI,
// ModelCheckpoint's resume scan) branch on it without parsing text.
#pragma once

#include <string>
#include <string_view>

#include "framework/core/Error.h"

namespace anvil {

enum class CkptErrc {
  kNotFound,        // CKPT_NOT_FOUND: missing or not a regular file
  kEmpty,           // CKPT_EMPTY: 0 bytes
  kEncrypted,       // CKPT_ENCRYPTED: MindSpore AES-GCM / AES-CBC / SM4-CBC magic
  kCrcMismatch,     // CKPT_CRC_MISMATCH: trailer (or manifest) CRC differs, or a corrupt trailer
  kNotACheckpoint,  // CKPT_NOT_A_CHECKPOINT: a top-level field other than Checkpoint.value
  kTruncated,       // CKPT_TRUNCATED: a length/varint runs past the end (or a manifest says longer)
  kMalformed,       // CKPT_MALFORMED: inside an entry: unknown/duplicate field, missing tag/type/content, bad UTF-8
  kNoEntries,       // CKPT_NO_ENTRIES: zero entries
  kBadDtype,        // CKPT_BAD_DTYPE: unknown or unsupported tensor_type (Int4)
  kSizeMismatch,    // CKPT_SIZE_MISMATCH: content bytes != prod(dims) * element size (or bad dims)
  kSliceMismatch,   // CKPT_SLICE_MISMATCH: consecutive same-tag slices disagree on dims/type
  kBadString,       // CKPT_BAD_STRING: "str" content not valid UTF-32LE
  kDuplicateTag,    // CKPT_DUPLICATE_TAG: a tag repeated non-adjacently (strict mode)
  kUnsupported,     // CKPT_UNSUPPORTED: map tensors in strict mode
  kUnverified,      // CKPT_UNVERIFIED: require_integrity but neither trailer nor manifest
  kIo,              // CKPT_IO: a system call failed (errno text included)
  kFiltered,        // CKPT_EMPTY_AFTER_FILTER: filters selected no entry
};

/// "CKPT_NOT_FOUND", ... (stable strings, used in messages and by the CLI).
std::string_view ckpt_errc_name(CkptErrc code);

/// Thrown for every checkpoint failure. what() = "<function>: <CODE>: checkpoint file '<path>': <detail>".
class CheckpointError : public Error {
 public:
  CheckpointError(CkptErrc code, std::string path, const std::string& message)
      : Error(message), code_(code), path_(std::move(path)) {}
  CkptErrc code() const { return code_; }
  /// The checkpoint file the error is about.
  const std::string& path() const { return path_; }

 private:
  CkptErrc code_;
  std::string path_;
};

/// Builds and throws a CheckpointError with the standard message layout.
[[noreturn]] void throw_ckpt_error(const char* function, CkptErrc code, const std::string& path,
                                   const std::string& detail);

}  // namespace anvil

/// ANVIL_CKPT_THROW(code, path, fmt, args...) throws CheckpointError from the calling function.
#define ANVIL_CKPT_THROW(code, path, ...) \
  ::anvil::throw_ckpt_error(__func__, (code), (path), ::fmt::format(__VA_ARGS__))
