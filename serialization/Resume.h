// Exact resume (spec callbacks-and-checkpointing.md §9): save_train_state writes a framework TrainState
// (framework/train/TrainState.h) into ONE MindSpore .ckpt; resume reads it back into fresh objects, after
// which Model::train continues with the next batch, bit-identically to an uninterrupted run (same
// build, deterministic mode).
//
//   // run 1 (e.g. from a callback's on_train_step_end, or after train() returned):
//   anvil::save_train_state("run/step120", model, loader, callbacks);      // -> run/step120.ckpt
//   // run 2, a new process: build network, optimizer (same schedule), Model, loader, callbacks as before
//   anvil::resume(model, loader, "run/step120.ckpt", callbacks);
//   model.train(total_epochs, loader, callbacks);                          // continues from step 121
//
// File contents (a valid MindSpore checkpoint; MindSpore >= 1.8 reports the __resume__ entries unused):
//   <network state_dict()>                 normal entries, MindSpore names ("layers.0.weight", ...)
//   <optimizer state_dict()>               "global_step", "learning_rate", "moments.<p>", ...
//   "epoch_num"  Int64 0-d                 cur_epoch_num of the last step (MindSpore append_info)
//   "step_num"   Int64 0-d                 global step (MindSpore append_info)
//   "__resume__.trainer"                   str, JSON {"format":"anvil-trainer","version":1,"global_step",
//                                          "epoch","step_in_epoch","initial_epoch","epoch_finished"}
//   "__resume__.data.<loader>"             str, JSON {"seed","epoch","index"} (DataPosition; <loader>
//                                          is ResumeOptions::loader_name, "train" by default)
//   "__resume__.rng.<stream>"              UInt8 [56]: s[0..3], seed, has_spare (0/1), bits of spare —
//                                          seven little-endian u64 (GeneratorState); streams as
//                                          rng_streams() names them ("global", "cell.<path>")
//   "__resume__.callback.<state_key>"      str, the callback's state()
//   "__resume__.accumulation"              str, JSON {"micro_step"} (gradient accumulation position)
//   "__resume__.accu_grads.<param>"        the accumulated gradient of <param> (only mid-accumulation)
//   "scale_sense", "current_iterator_step", "last_overflow_iterator_step"
//                                          loss-scale state under MindSpore's names (only with a
//                                          LossScaleManager; Float32 / Int32 0-d)
//   <options.append_info>                  caller's extra entries, last
// The learning-rate schedule is not stored as such: it is code the caller rebuilds; the restored
// optimizer global step makes it yield the same rate (the optimizer's "learning_rate" is checked).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/train/TrainState.h"
#include "serialization/Checkpoint.h"
#include "serialization/ParamDict.h"

namespace anvil {

class Model;
class DataLoader;
class Callback;
class RunContext;

/// Reserved tag prefix of the resume entries.
inline constexpr const char* kResumePrefix = "__resume__.";

struct ResumeSaveOptions {
  /// Names the loader's entry: "__resume__.data.<loader_name>".
  std::string loader_name = "train";
  /// Extra append_info entries written after the resume entries (names must not clash).
  AppendInfo append_info{};
  bool crc_check = true;  // integrity trailer (resume requires a verifiable file)
  bool durable = true;    // fsync file and directory
};

struct ResumeOptions {
  /// The loader entry to restore: "__resume__.data.<loader_name>".
  std::string loader_name = "train";
  /// Refuse a file that cannot prove it is complete (CRC trailer or manifest). Keep it on for files
  /// written by save_train_state; off only for files whose trailer was stripped.
  bool require_integrity = true;
};

/// What resume() restored.
struct ResumeResult {
  std::string path;        // the file read
  TrainProgress progress;  // where train() continues (see Model::resume_from)
  DataPosition data;       // the loader's restored position
};

/// The append_info entries (in the order of the file comment: epoch_num, step_num, then the
/// "__resume__.*" entries) that encode `state` minus its network/optimizer tensors. For writers that
/// assemble their own checkpoint (e.g. ModelCheckpoint with save_resume_state): pass them as
/// SaveOptions::append_info together with SaveOptions::optimizer.
/// Errors: anvil::Error when loader_name or a callback key is empty or contains no valid characters.
AppendInfo train_state_append_info(const TrainState& state, const std::string& loader_name = "train");

/// Prefixes of every entry train_state_from_entries reads ("__resume__." and the loss-scale names):
/// pass them as LoadOptions::specify_prefix.
std::vector<std::string> train_state_entry_prefixes();

/// Parses the "__resume__.*" entries of `dict` (plus the loss-scale entries, when present; load it
/// with specify_prefix = train_state_entry_prefixes()) into a TrainState whose network and optimizer
/// lists are empty. A missing "__resume__.accumulation" means micro_step 0 (older files).
/// Errors: anvil::Error naming the entry when "__resume__.trainer" or the loader's entry is missing
/// or malformed, or an RNG entry is not UInt8 [56].
TrainState train_state_from_entries(const ParamDict& dict, const std::string& loader_name = "train");

/// Captures capture_train_state(model, loader, callbacks) and writes it with save_checkpoint to
/// checkpoint_path(path), atomically and durably (a crash leaves the previous file intact).
/// Returns what was written. Errors: those of capture_train_state and save_checkpoint (anvil::Error,
/// FileError naming the path).
CheckpointFileInfo save_train_state(const std::string& path, Model& model, const DataLoader& loader,
                                    const std::vector<std::shared_ptr<Callback>>& callbacks = {},
                                    const ResumeSaveOptions& options = {});

/// What resume() reads for `path`: a regular file is used as given. A directory resolves through its
/// latest pointers ("<prefix>.latest" files: one line, the basename of the newest committed checkpoint,
/// spec §5); of the pointers naming a valid checkpoint, the most recently modified target wins. When
/// there is no pointer or none names a valid file, the newest (modification time, then name) valid
/// "*.ckpt" of the directory is used. Valid = loads with options.require_integrity and holds a
/// parseable resume state. Every skipped pointer or file is logged (warning) with its reason.
/// Errors: anvil::Error naming the path when it does not exist, or when a directory holds no valid
/// checkpoint (listing what was skipped and why).
std::string resolve_resume_path(const std::string& path, const ResumeOptions& options = {});

/// The same from inside a training hook: capture_train_state(ctx) (the loop's Model, train_dataset
/// and callbacks), written as above. Errors: also when ctx is not a training loop's.
CheckpointFileInfo save_train_state(const std::string& path, const RunContext& ctx,
                                    const ResumeSaveOptions& options = {});

/// Restores a file written by save_train_state (or a checkpoint carrying the same entries) into `model`
/// (whose network, optimizer and learning-rate schedule must be built as in the saved run), `loader`
/// (same dataset and options; its seed is taken from the file) and `callbacks`, in the spec's order:
/// verify integrity and parse every resume entry; strict-load network parameters and optimizer state
/// (all present, no dtype conversion; streamed into the existing buffers); then counters, data position,
/// RNG streams and callback states (restore_train_state). The next model.train(epoch, loader,
/// callbacks) continues from the saved position (pass the same total `epoch`; initial_epoch 0).
/// `path` is a file, or a directory resolved by resolve_resume_path (ResumeResult::path tells which file).
/// Errors (nothing changed unless noted): CheckpointError for an unreadable, torn or unverifiable file;
/// anvil::Error naming the file when it holds no resume state, an entry is malformed, a parameter or
/// optimizer entry is missing or mismatched, RNG streams differ from the network's, or the position is
/// invalid for the loader; an I/O error while streaming tensors, or a callback's load_state error,
/// can leave the restore partial.
ResumeResult resume(Model& model, DataLoader& loader, const std::string& path,
                    const std::vector<std::shared_ptr<Callback>>& callbacks = {}, const ResumeOptions& options = {});

}  // namespace anvil
