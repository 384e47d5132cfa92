#!/usr/bin/env bash
# Installs every Debian package Anvil needs to build, test and benchmark. Idempotent: packages that
# are already installed are skipped, so a second run is a no-op that takes well under a second.
# Uses sudo only when not root. Set ANVIL_SKIP_DEPS=1 to skip entirely (e.g. on a prepared machine).
set -euo pipefail

if [ "${ANVIL_SKIP_DEPS:-0}" = "1" ]; then exit 0; fi

required=(
  build-essential cmake pkg-config libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  libdnnl-dev ocl-icd-opencl-dev libprotobuf-dev protobuf-compiler libonnx-dev
  libfmt-dev libcli11-dev nlohmann-json3-dev dataset-fashion-mnist
  # libFuzzer: clang plus its runtime BY NAME (a recommendation, which --no-install-recommends drops)
  clang libclang-rt-14-dev
)
# Peers and validators for the benchmarks and cross-checks (PyTorch with OpenBLAS, numpy, onnx).
optional=(python3-torch python3-numpy python3-onnx python3-protobuf libopenblas0-pthread)

missing=()
for p in "${required[@]}" "${optional[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# ONNX Runtime parity tests run exported models in onnxruntime-node: Debian's nodejs and npm, unless
# the machine already has node and npm from elsewhere (mixing the two breaks apt).
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
