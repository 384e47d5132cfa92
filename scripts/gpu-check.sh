#!/usr/bin/env bash
# The GPU checks of the CUDA backend, run on a machine with an NVIDIA GPU from the bundle that
# scripts/gpu-bundle.sh made (.gpu/bundle.tar.xz). Logs go to $OUT (default ./gpu-out).
#
#   bash scripts/gpu-check.sh [STAGE...]    # stages: info tests memcheck lenet bench (default: all)
#
#   info      nvidia-smi, the libraries the binaries resolve, the cuDNN/cuBLAS versions found
#   tests     anvil_test_cuda: every op forward and backward vs the reference backend, LeNet steps GPU
#             vs CPU, allocator, checkpoints across devices (gtest XML + log)
#   memcheck  compute-sanitizer memcheck over a few LeNet training steps and the device-path tests
#   lenet     train_lenet --device-target GPU on Fashion-MNIST, 3 epochs (accuracy vs the CPU figure)
#   bench     gpu_bench: ResNet-50 and LeNet-5 training throughput vs PyTorch in the same run, with a
#             per-op CUDA-event profile
set -uo pipefail

cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
root=/tmp/anvil-gpu
rm -rf "$root" && mkdir -p "$root"  # always the bundle that came with this call
tar -C "$root" -xJf .gpu/bundle.tar.xz || { echo "gpu-check: no .gpu/bundle.tar.xz (run scripts/gpu-bundle.sh)"; exit 2; }

# CUDA, cuDNN and cuBLAS of the GPU machine: the toolkit's lib64 and the pip wheels PyTorch uses.
libdirs=$root/lib
for f in $(find /usr/local /opt /usr/lib -name 'libcudnn.so.9' -o -name 'libcublas.so.13' -o -name 'libcudart.so.13' \
             -o -name 'libcublasLt.so.13' 2>/dev/null); do
  libdirs=$libdirs:$(dirname "$f")
done
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# compute-sanitizer and nvidia-smi may live beside nvcc rather than on PATH.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /usr/local/nvidia/bin; do
  [ -d "$d" ] && PATH=$PATH:$d
done

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(info tests memcheck lenet bench)
status=0
for s in "${stages[@]}"; do
  echo "=== gpu-check: $s ($(date -u +%H:%M:%S))"
  case $s in
    info)
      nvidia-smi 2>&1 | head -15
      for b in "$root"/bin/*; do echo "$b:"; ldd "$b" | grep -E 'not found|cudnn|cublas|cudart|dnnl'; done
      ;;
    tests)
      "$root/bin/anvil_test_cuda" --gtest_output="xml:$out/cuda_tests.xml" 2>&1 | tee "$out/cuda_tests.log" | tail -60
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      ;;
    memcheck)
      compute-sanitizer --tool memcheck --leak-check full --error-exitcode 3 "$root/bin/anvil_test_cuda" \
        --gtest_filter='*LeNet*:*SecondStep*:CudaDevicePaths.*' 2>&1 | tee "$out/memcheck.log" | tail -30
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      ;;
    lenet)
      "$root/bin/train_lenet" --device-target GPU --epochs 3 --data-dir "$root/data" 2>&1 | tee "$out/lenet_gpu.log" | tail -12
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      ;;
    bench)
      "$root/bin/gpu_bench" --peer bench/gpu_torch_peer.py --python python3 --profile 2>&1 | tee "$out/gpu_bench.log" | tail -40
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
      ;;
    *) echo "gpu-check: unknown stage '$s'"; status=2 ;;
  esac
done
exit $status
