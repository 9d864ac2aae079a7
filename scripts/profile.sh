#!/usr/bin/env bash
# Where an epoch's CPU time goes, ours beside PyTorch's: one epoch of the lesson's CNN
# (or dense net) from fashion-tch and from bench/reference.py (channels-last for the
# CNN, its faster layout), each under `perf record`, summed by what ran.
#
#   scripts/profile.sh [cnn|dense]     (run after setup_libtorch.sh and scripts/bench.sh,
#                                       which installs .bench/venv; needs perf: Debian's
#                                       linux-perf)
#
# Rows: oneDNN's kernels generated at run time (perf sees them as [JIT] code: the
# convolutions), the rest of oneDNN, MKL's matrix products, ATen's own kernels (ReLU,
# pooling, Adam's element-wise updates, ...) and dispatch, OpenMP threads spinning or
# waiting at a barrier, Python (the interpreter and torch's bindings), and the rest.
# Each column is seconds of CPU time (all threads) and its share, for the whole process:
# start-up (loading libtorch, importing torch, reading the data) is in it, a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODEL=${1:-cnn}
case "$MODEL" in cnn | dense) ;; *) echo "profile: MODEL must be cnn or dense, not '$MODEL'" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "profile: perf is missing; install it (Debian: apt-get install linux-perf)" >&2; exit 1; }
PY=.bench/venv/bin/python3
"$PY" -c 'import torch' 2>/dev/null || { echo "profile: run scripts/bench.sh once first, to install PyTorch into .bench/venv" >&2; exit 1; }
DATA=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -d data/fashion-mnist ] && DATA=data/fashion-mnist
THREADS=$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)
OUT=.bench/profile
mkdir -p "$OUT"
cargo build --release --quiet --bin "train_$MODEL"

FREQ=499 # samples per second and thread
# record LOG DATA COMMAND...: perf's own complaints reach the terminal, the program's
# output goes to LOG
record() {
  local log=$1 data=$2
  shift 2
  perf record -q -F $FREQ -o "$data" -- sh -c 'log=$1; shift; exec "$@" >"$log" 2>&1' _ "$log" "$@" ||
    { echo "profile: '$*' failed under perf; see $log" >&2; exit 1; }
}
RUN="$OUT/run-$$"
record "$OUT/ours.log" "$OUT/ours.data" ./target/release/train_"$MODEL" --epochs 1 \
  --device cpu --threads "$THREADS" --data-dir "$DATA" --out "$RUN" --quiet
rm -rf "$RUN"
LAYOUT=()
[ "$MODEL" = cnn ] && LAYOUT=(--channels-last)
record "$OUT/torch.log" "$OUT/torch.data" "$PY" bench/reference.py --model "$MODEL" \
  --epochs 1 --threads "$THREADS" --data-dir "$DATA" "${LAYOUT[@]}"

# Samples of each kind in one recording, as "kind<TAB>samples" lines.
kinds() {
  perf report -i "$1" --no-children -g none --sort dso,sym -F overhead,sample,dso,sym \
    --field-separator=$'\t' --stdio 2>"$1.err" >"$1.txt" ||
    { echo "profile: perf report failed on $1; see $1.err" >&2; exit 1; }
  grep -v '^#' "$1.txt" | grep . |
    awk -F'\t' '{
      n = $2; dso = $3; sym = $4
      if (dso ~ /JIT/) k = "oneDNN kernels generated at run time (JIT)"
      else if (sym ~ /dnnl|mkldnn/) k = "oneDNN, other"
      else if (sym ~ /mkl_/) k = "MKL matrix products"
      else if (dso ~ /libgomp/) k = "OpenMP spinning and barriers"
      else if (dso ~ /python/) k = "Python (interpreter and torch bindings)"
      else if (dso ~ /libtorch|libc10/) k = "ATen kernels and dispatch"
      else k = "other (libc, kernel, ...)"
      s[k] += n
    } END { for (k in s) printf "%s\t%d\n", k, s[k] }'
}
kinds "$OUT/ours.data" >"$OUT/ours.kinds"
kinds "$OUT/torch.data" >"$OUT/torch.kinds"

echo "one epoch of the $MODEL, $THREADS threads; CPU seconds by what ran (perf, $FREQ Hz per thread)"
echo "epoch lines: $(grep -h -o 'epoch .*' "$OUT/ours.log" | tail -1 | sed 's/  */ /g') | $(tail -1 "$OUT/torch.log")"
echo
echo "| what ran | fashion-tch | PyTorch ${LAYOUT[*]:-} |"
echo "|---|---:|---:|"
awk -F'\t' -v f=$FREQ '
  FNR == 1 { file++ }
  { s[file, $1] += $2; t[file] += $2; seen[$1] = 1 }
  END {
    for (k in seen) printf "| %s | %.1f s (%.0f%%) | %.1f s (%.0f%%) |\n", k,
      s[1, k] / f, 100 * s[1, k] / t[1], s[2, k] / f, 100 * s[2, k] / t[2] | "sort -t\"|\" -k3 -rn"
    close("sort -t\"|\" -k3 -rn")
    printf "| all | %.1f s | %.1f s |\n", t[1] / f, t[2] / f
  }' "$OUT/ours.kinds" "$OUT/torch.kinds"
