#!/usr/bin/env bash
# Installs npm's onnxruntime-node (the ONNX Runtime used by the ONNX export parity tests and by
# `anvil export --verify`) into a cache folder outside any build tree, so CI downloads it once:
#   $ANVIL_NPM_CACHE, else $XDG_CACHE_HOME/anvil/npm, else $HOME/.cache/anvil/npm
# The package's install script is skipped (--ignore-scripts): it only downloads GPU providers, and
# the CPU binaries ship in the package, so this works offline against a registry mirror.
# Same folder and version as serialization/onnx/OnnxRuntimeNode.{h,cpp}. Idempotent; exit 0 when the
# package loads, 1 otherwise (2 when node or npm is missing).
set -euo pipefail

VERSION="1.30.0"  # keep equal to kOnnxRuntimeNodeVersion
if [[ -n "${ANVIL_NPM_CACHE:-}" ]]; then
  CACHE="$ANVIL_NPM_CACHE"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then
  CACHE="$XDG_CACHE_HOME/anvil/npm"
else
  CACHE="${HOME:?}/.cache/anvil/npm"
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "onnx_install_ort: $tool not found (apt-get install nodejs npm); ONNX Runtime checks will be skipped" >&2
    exit 2
  fi
done

mkdir -p "$CACHE"
check() { NODE_PATH="$CACHE/node_modules" node -e "require('onnxruntime-node')" >/dev/null 2>&1; }
installed_version() {
  NODE_PATH="$CACHE/node_modules" node -p "require('onnxruntime-node/package.json').version" 2>/dev/null || true
}

(
  flock 9  # the tests may install concurrently; they take the same lock
  if [[ "$(installed_version)" != "$VERSION" ]] || ! check; then
    echo "onnx_install_ort: installing onnxruntime-node@$VERSION into $CACHE"
    npm_config_onnxruntime_node_install=skip npm install --ignore-scripts --no-audit --no-fund --no-save \
      --loglevel=error --prefix "$CACHE" "onnxruntime-node@$VERSION"
  fi
) 9>"$CACHE/.install.lock"

if check; then
  echo "onnx_install_ort: onnxruntime-node $(installed_version) loads from $CACHE/node_modules"
else
  echo "onnx_install_ort: onnxruntime-node does not load from $CACHE/node_modules" >&2
  exit 1
fi
