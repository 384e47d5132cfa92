// `anvil export`: builds a model-zoo network, optionally loads a MindSpore .ckpt into it, exports it
// to ONNX, runs the ONNX checker on the file and, with --verify, compares ONNX Runtime's outputs with
// Anvil's on random inputs.
//
//   anvil export --model lenet|mlp|resnet18|resnet50 --out FILE[.onnx] [--ckpt FILE.ckpt]
//                [--num-classes N] [--in-channels C] [--input-size H[xW]] [--small-input]
//                [--base-width W] [--hidden 512,256] [--batch B] [--opset 13..17] [--static-batch]
//                [--format ONNX] [--external-data auto|always|never] [--no-check] [--verify]
//
// Defaults: lenet 1×32×32 input, 10 classes; mlp 1×28×28 input flattened, hidden 512; resnet18/resnet50
// 3×224×224 (32×32 with --small-input), 10 classes; sample batch 1; opset 13; dynamic batch.
// --verify runs the exported file in ONNX Runtime (npm onnxruntime-node, installed into the cache on
// first use, see OnnxRuntimeNode.h) at batch sizes 1 and 3 and checks
//   max |onnxruntime − anvil| <= 1e-4 · max(1, max |anvil|);
// when node or npm is missing it prints "onnxruntime: skipped (...)" and does not fail.
// Exit status: 0 exported (and checked), 1 the ONNX checker or the ONNX Runtime comparison failed,
// 2 usage or export error (message on stderr).
#pragma once

/// Entry point of `anvil export` (argv[0] is the subcommand's name, e.g. "export"); prints to
/// stdout/stderr and returns the exit status above. Never throws.
int anvil_export_main(int argc, char** argv);
