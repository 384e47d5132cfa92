#!/usr/bin/env bash
# Checkpoint save/load bandwidth: Anvil vs `dd conv=fsync` vs PyTorch, same size, same disk, same run.
#
#   bash bench/ckpt_bench.sh [build-dir] [--params N] [--repeats R]
#
# build-dir (default: build) holds bench/ckpt_bench. ANVIL_BENCH_DIR (default: /tmp) is where the files
# go; ANVIL_BENCH_ROUNDS (default 2) rounds alternate Anvil (with its dd baseline) and PyTorch, so a
# change in machine load hits both sides. Free disk space is checked first (3x the checkpoint size).
# Figures are noisy on a shared disk: each line gives the median and every run.
#
# Summary ratios:
#   save_vs_dd          dd time / Anvil save time (median of all runs, and best run vs best run;
#                       >= 0.9 is the target)
#   torch_save_vs_dd    dd time / torch.save+fsync time (for reference)
#   load_vs_torch_load  torch.load time / Anvil load-into-network time (>= 2 is the target)
set -euo pipefail

BUILD=${1:-build}
shift || true
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${ANVIL_BENCH_DIR:-/tmp}
ROUNDS=${ANVIL_BENCH_ROUNDS:-2}
PY=/usr/bin/python3  # Debian's interpreter (python3-torch); python3 on PATH has none of Debian's packages
BIN="$BUILD/bench/ckpt_bench"

PARAMS=100000000
REPEATS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --params) PARAMS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    *) echo "usage: $0 [build-dir] [--params N] [--repeats R]" >&2; exit 2 ;;
  esac
done

[ -x "$BIN" ] || { echo "ckpt_bench.sh: $BIN not found (build the ckpt_bench target)" >&2; exit 1; }
need=$((PARAMS * 4 * 3 / 1024 + 262144))
avail=$(df -Pk "$DIR" | awk 'NR==2 {print $4}')
if [ "$avail" -lt "$need" ]; then
  echo "ckpt_bench.sh: skipped: needs $((need / 1024)) MiB free in $DIR, $((avail / 1024)) MiB available"
  exit 0
fi

have_torch=1
$PY -c 'import torch' 2>/dev/null || { have_torch=0; echo "ckpt_bench.sh: no torch for $PY (apt-get install python3-torch): PyTorch peer skipped"; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), dir: $DIR ($(df -P "$DIR" | awk 'NR==2 {print $1}'))"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  "$BIN" --dir "$DIR" --params "$PARAMS" --repeats "$REPEATS" | tee -a "$out"
  if [ "$have_torch" = 1 ]; then
    OMP_NUM_THREADS=2 $PY "$HERE/ckpt_torch_peer.py" --dir "$DIR" --params "$PARAMS" --repeats "$REPEATS" | tee -a "$out"
  fi
done

# Medians over every run of every round.
awk '
  / runs=/ {
    name = $1; n = split(substr($0, index($0, "runs=") + 5), v, ",");
    for (i = 1; i <= n; i++) { runs[name] = runs[name] " " v[i]; }
  }
  function best(s,   a, n, i, m) {
    n = split(s, a, " "); m = 0;
    for (i = 1; i <= n; i++) if (m == 0 || a[i] + 0 < m) m = a[i] + 0;
    return m;
  }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ");
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t; }
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0;
  }
  END {
    print "# medians over all rounds (seconds)";
    for (k in runs) printf "%-24s %.4f\n", k, median(runs[k]);
    dd = median(runs["dd_conv_fsync"]); save = median(runs["anvil_save_fsync"]);
    load = median(runs["anvil_load_into_net"]); tl = median(runs["torch_load"]); ts = median(runs["torch_save_fsync"]);
    if (save > 0) printf "save_vs_dd=%.2f (best runs: %.2f)\n", dd / save, best(runs["dd_conv_fsync"]) / best(runs["anvil_save_fsync"]);
    if (ts > 0) printf "torch_save_vs_dd=%.2f\n", dd / ts;
    if (load > 0 && tl > 0) printf "load_vs_torch_load=%.2f (best runs: %.2f)\n", tl / load, best(runs["torch_load"]) / best(runs["anvil_load_into_net"]);
  }' "$out"
