#!/usr/bin/env bash
# Packs what the GPU checks need into .gpu/bundle.tar.xz (git-ignored), so that they run on a machine
# that has an NVIDIA driver, CUDA 13, cuDNN 9 and PyTorch but none of Anvil's Debian packages (the lent
# GPU machines: scripts/gpu-check.sh runs there). Run here, from the repository root:
#
#   bash scripts/gpu-bundle.sh [BUILD_DIR]      # default build-gpu; configures Release with ANVIL_CUDA=ON
#
# The bundle holds the CUDA test binary, gpu_bench, train_lenet, libanvil and every shared library
# they load except the C/C++ runtime and the CUDA/cuDNN/cuBLAS libraries (the GPU machine has its own,
# which gpu-check.sh finds), plus the Fashion-MNIST files of Debian's dataset-fashion-mnist package.
set -euo pipefail

cd "$(dirname "$0")/.."
build=${1:-build-gpu}
bash scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_CUDA=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target anvil_test_cuda gpu_bench train_lenet

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/data"
bins=("$build/tests/anvil_test_cuda" "$build/bench/gpu_bench" "$build/examples/train_lenet")
cp "${bins[@]}" "$stage/bin/"

# Libraries the GPU machine provides itself (C/C++ runtime, CUDA, cuDNN, cuBLAS) stay out.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl\.|librt\.|libstdc\+\+|libgcc_s|libcudart|libcublas|libcudnn|libcuda\.)'
for b in "${bins[@]}"; do
  ldd "$b" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  if ! [[ $name =~ $skip ]]; then cp -L "$path" "$stage/lib/$name"; fi
done

data=/usr/share/datasets/fashion-mnist
cp "$data"/*.gz "$stage/data/"

mkdir -p .gpu
tar -C "$stage" -cJf .gpu/bundle.tar.xz bin lib data
echo "gpu-bundle: .gpu/bundle.tar.xz ($(du -h .gpu/bundle.tar.xz | cut -f1)): $(ls "$stage/lib" | tr '\n' ' ')"
