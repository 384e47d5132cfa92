#!/usr/bin/env bash
# Training throughput of Anvil vs PyTorch on the same networks, in the same run (`make bench`).
#
#   bash bench/run.sh [build-dir] [common flags...]
#
# build-dir (default: build) holds bench/bench_train. Common flags go to both bench_train and
# torch_peer.py: --warmup N --repeats N --lenet-steps N --mlp-steps N --batches N --synthetic
# --resnet-steps N --resnet-warmup N --resnet-batch N. `--only NET` (lenet5, mlp or resnet18; may be
# given more than once) limits the run to those networks; default: all three.
# Environment: ANVIL_BENCH_ROUNDS (default 2) rounds of the four runs; ANVIL_BENCH_THREADS (default 2);
# ANVIL_BENCH_PROFILE=0 skips the profile section.
#
# Output: each program's line (samples_per_s = median of its repeats, rates = every repeat), then per
# peer and network the median over all rounds' repeats, and the ratio anvil/torch of those medians
# (> 1: Anvil trains faster), then a profile of Anvil's LeNet-5 and/or ResNet-18 step (whichever ran).
#
# Both peers get the same threads: OMP_NUM_THREADS=2 (oneDNN's OpenMP pool in Anvil; torch's intra-op
# pool via torch.set_num_threads(2)). PyTorch 1.13 from Debian runs its Linear layers through
# libblas.so.3, which is the slow reference BLAS unless OpenBLAS provides it, so the peer runs with
# libblas.so.3 resolved to libopenblas0-pthread and OPENBLAS_NUM_THREADS=1 (shared/specs/toolchain.md,
# "Peer baseline"). The networks are interleaved (anvil lenet5, torch lenet5, anvil mlp, torch mlp, anvil
# resnet18, torch resnet18) so
# that a change in machine load hits both sides of a ratio alike, and the whole sequence is repeated. Figures are noisy (±15-25%); the
# load average is printed with them.
set -euo pipefail

BUILD=${1:-build}
shift || true
NETS=()
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = --only ]; then
    if [ $# -lt 2 ]; then echo "run.sh: --only needs a network (lenet5, mlp or resnet18)" >&2; exit 2; fi
    case "$2" in
      lenet5|mlp|resnet18) NETS+=("$2") ;;
      *) echo "run.sh: --only expects lenet5, mlp or resnet18, got '$2'" >&2; exit 2 ;;
    esac
    shift 2
  else
    args+=("$1")
    shift
  fi
done
[ ${#NETS[@]} -gt 0 ] || NETS=(lenet5 mlp resnet18)
set -- ${args[@]+"${args[@]}"}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
THREADS=${ANVIL_BENCH_THREADS:-2}
ROUNDS=${ANVIL_BENCH_ROUNDS:-2}
ANVIL_BIN="$BUILD/bench/bench_train"
PY=/usr/bin/python3  # Debian's interpreter: python3 on PATH has none of Debian's packages
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread

if [ ! -x "$ANVIL_BIN" ]; then
  echo "run.sh: $ANVIL_BIN not found; build first (cmake --build $BUILD --target bench_train)" >&2
  exit 1
fi

export OMP_NUM_THREADS=$THREADS
export OPENBLAS_NUM_THREADS=1

have_torch=1
if ! "$PY" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "run.sh: $PY cannot import torch (apt-get install python3-torch); running Anvil only" >&2
fi
torch_env=()
if [ -e "$OPENBLAS_DIR/libblas.so.3" ]; then
  # Takes precedence over the libblas.so.3 alternative, whatever it points to.
  torch_env=(env "LD_LIBRARY_PATH=$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
  echo "run.sh: $OPENBLAS_DIR/libblas.so.3 missing (apt-get install libopenblas0-pthread):" \
       "the torch peer will use the reference BLAS and be unfairly slow" >&2
  torch_env=(env)
fi

echo "# $(date -u +%FT%TZ) $(nproc) cpus; load average:$(uptime | sed 's/.*load average://')"
echo "# OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS torch.set_num_threads($THREADS)"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for net in "${NETS[@]}"; do
    "$ANVIL_BIN" "$@" --only "$net" | tee -a "$results"
    if [ "$have_torch" = 1 ]; then
      "${torch_env[@]}" "$PY" "$HERE/torch_peer.py" "$@" --only "$net" --threads "$THREADS" | tee -a "$results"
    fi
  done
done
echo "# load average after:$(uptime | sed 's/.*load average://')"

# Per peer and network: the median over every repeat of every round (the rates= fields).
awk '
  function median(list,   v, n, i, j, x) {
    n = split(list, v, ",")
    for (i = 2; i <= n; ++i) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; --j) v[j + 1] = v[j]; v[j + 1] = x }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  {
    for (i = 1; i <= NF; ++i) if ($i ~ /^rates=/) {
      r = substr($i, 7); key = $1 " " $2
      # Not all[key] = (key in all) ? ...: mawk creates all[key] before testing, which added an empty
      # (zero) rate to every list.
      prev = (key in all) ? all[key] "," : ""
      all[key] = prev r
      nets[$2] = 1
    }
  }
  END {
    for (k in all) { n = split(all[k], tmp, ","); med[k] = median(all[k]); printf "median %s samples_per_s=%.1f (%d runs)\n", k, med[k], n }
    for (n in nets)
      if (med["anvil " n] > 0 && med["torch " n] > 0)
        printf "ratio %s anvil/torch=%.3f\n", n, med["anvil " n] / med["torch " n]
  }' "$results" | sort

# profile_net NET STEPS FLAGS...: phases of a short bench_train run with FLAGS, then oneDNN primitive
# time per step of the same run under ONEDNN_VERBOSE (STEPS = its warmup + timed steps).
profile_net() {
  local net=$1 steps=$2
  shift 2
  echo "# profile: $net phases (bench_train --profile), then oneDNN primitive time per step"
  "$ANVIL_BIN" "${BENCH_ARGS[@]}" --only "$net" "$@" --profile | grep '^profile'
  ONEDNN_VERBOSE=1 "$ANVIL_BIN" "${BENCH_ARGS[@]}" --only "$net" "$@" 2>/dev/null |
    awk -F, -v steps="$steps" '
      ($1 == "onednn_verbose" || $1 == "dnnl_verbose") && $2 == "exec" {
        key = sprintf("%-14s %-18s %s", $4, $6, $5); t[key] += $NF; c[key] += 1; total += $NF }
      END {
        if (total == 0) { print "  (no oneDNN executions seen)"; exit }
        for (k in t) printf "  %8.4f ms/step %5.1f%%  %5.1f calls/step  %s\n", t[k] / steps, 100 * t[k] / total, c[k] / steps, k
        printf "  %8.4f ms/step in oneDNN primitives (all)\n", total / steps
      }' | sort -k1,1 -g -r
}

if [ "${ANVIL_BENCH_PROFILE:-1}" != 0 ]; then
  # Where time goes in Anvil's step: wall time per phase, then oneDNN's own execution times
  # (ONEDNN_VERBOSE=1 prints one line per primitive execution, its time in ms last). What the phases
  # spend outside oneDNN is framework overhead and the plain-loop kernels (loss, optimizer, and for
  # ResNet-18 whatever of batch-norm, add and mean is not a oneDNN primitive).
  # The verbose printing itself slows the run down; read the shares, not the absolute figures.
  BENCH_ARGS=("$@")
  for net in "${NETS[@]}"; do
    case "$net" in
      # --data-wait-steps 0: the data-wait runs (200 more LeNet-5 steps) would inflate the per-step figures
      lenet5) profile_net lenet5 120 --warmup 20 --repeats 1 --lenet-steps 100 --data-wait-steps 0 ;;
      resnet18) profile_net resnet18 10 --resnet-warmup 2 --repeats 1 --resnet-steps 8 ;;
    esac
  done
fi
