#!/usr/bin/env bash
# Side-by-side speed: fashion-tch's trainers and a plain PyTorch loop (bench/reference.py)
# with the same models, data, batch size and epochs, one after the other in this one
# invocation, plus the machine's measured float32 matmul peak.
#
#   scripts/bench.sh [EPOCHS] [ROUNDS]   (default 1 epoch of each, 1 round; run after
#                                         setup_libtorch.sh)
#
# PyTorch runs in each variant worth trying (fused Adam; channels-last for the CNN; one
# thread for the dense net) and the fastest is the one compared with, named per row.
#
# BENCH_BIN_DIR=DIR times the trainers already built in DIR instead of building
# target/release (to compare two builds, as README "Build times" does).
#
# Each round runs every program once, ours right before PyTorch's, so that each ratio
# compares runs made back to back; with several rounds the last lines give each ratio's
# median, as load on a shared machine moves single runs by a quarter.
#
# PyTorch 2.11.0 (the same PyPI wheel the set-up script unpacks) is installed into the
# git-ignored .bench/venv on first use. The epoch times include scoring the test set,
# for both sides. Nothing here is a test: no figure is asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EPOCHS=${1:-1}
ROUNDS=${2:-1}
for n in "$EPOCHS" "$ROUNDS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: EPOCHS and ROUNDS must be whole numbers above 0, not '$n' (usage: scripts/bench.sh [EPOCHS] [ROUNDS])" >&2; exit 2; }
done
DATA=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -d data/fashion-mnist ] && DATA=data/fashion-mnist
THREADS=$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)
OUT=.bench/logs
mkdir -p "$OUT"

PY=.bench/venv/bin/python3
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "bench: installing torch==2.11.0 (and numpy, which it warns without) into .bench/venv (once)"
  python3 -m venv .bench/venv
  .bench/venv/bin/pip install --quiet torch==2.11.0 numpy
fi
BIN=${BENCH_BIN_DIR:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet --bin train_dense --bin train_cnn
  BIN=target/release
fi

# Float32 matmul peak of this machine, as PyTorch (the same libtorch) reaches it.
PEAK=$("$PY" - "$THREADS" <<'EOF'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
for _ in range(3):
    a @ b
best = 0.0
for _ in range(10):
    t = time.perf_counter(); a @ b; dt = time.perf_counter() - t
    best = max(best, 2 * 2048**3 / dt / 1e9)
print(f"{best:.1f}")
EOF
)

# Seconds per epoch: the mean over the epochs of the reference's log.
seconds() {
  awk '/ seconds / { for (i = 1; i <= NF; i++) if ($i == "seconds") { s += $(i + 1); n++ } }
       END { printf "%.2f", s / n }' "$1"
}

run_ours() { # model; seconds from metrics.csv, to the millisecond. Its own default
  # threads, as a user gets them: one per core, and one for the dense net
  "$BIN/train_$1" --epochs "$EPOCHS" --device cpu \
    --data-dir "$DATA" --out "$OUT/run-$1-$$" --quiet >"$OUT/ours-$1-r$round.log"
  awk -F, 'NR > 1 { s += $6; n++ } END { printf "%.3f", s / n }' "$OUT/run-$1-$$/metrics.csv"
  rm -rf "$OUT/run-$1-$$"
}
run_torch() { # model, extra flags
  local tag
  tag=$(printf '%s' "${*:2}" | tr -c 'a-z0-9' '_')
  "$PY" bench/reference.py --model "$1" --epochs "$EPOCHS" --threads "$THREADS" \
    --data-dir "$DATA" "${@:2}" >"$OUT/torch-$1-$tag-r$round.log"
  seconds "$OUT/torch-$1-$tag-r$round.log"
}

# PyTorch's eager loop at its best: each model in every variant worth trying, the fastest
# taken. Fused Adam for both; channels-last for the CNN; one thread for the dense net,
# whose steps are too small to share between cores (later flags win: --threads 1).
declare -A VARIANTS=(
  [dense]="default|--fused|--threads 1|--threads 1 --fused"
  [cnn]="default|--fused|--channels-last|--channels-last --fused"
)

# MFLOP per training image (forward, backward for inputs and weights: about 3x forward).
declare -A MFLOP=([dense]=0.61 [cnn]=25.4)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $THREADS cores; matmul peak $PEAK GFLOP/s"
echo "epochs: $EPOCHS of 60,000 images at batch 32 (+ scoring 10,000 test images)"
echo
echo "| round | model | fashion-tch s/epoch | PyTorch s/epoch, each variant | best PyTorch variant | ours / best PyTorch | ours images/s | ours % of peak |"
echo "|---:|---|---:|---|---|---:|---:|---:|"
declare -A RATIOS=()
for round in $(seq "$ROUNDS"); do
  for model in dense cnn; do
    ours=$(run_ours "$model")
    best="" best_variant="" all=""
    IFS='|' read -r -a variants <<<"${VARIANTS[$model]}"
    for variant in "${variants[@]}"; do
      flags=()
      [ "$variant" = default ] || read -r -a flags <<<"$variant"
      t=$(run_torch "$model" "${flags[@]}")
      all+="${all:+, }$variant $t"
      if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
        best=$t best_variant=$variant
      fi
    done
    ratio=$(awk -v o="$ours" -v b="$best" 'BEGIN { printf "%.2f", o / b }')
    RATIOS[$model]+="$ratio "
    awk -v r="$round" -v m="$model" -v o="$ours" -v a="$all" -v bv="$best_variant" -v q="$ratio" -v f="${MFLOP[$model]}" -v p="$PEAK" \
      'BEGIN { ips = 60000 / o; printf "| %d | %s | %.2f | %s | %s | %s | %.0f | %.0f%% |\n", r, m, o, a, bv, q, ips, 100 * ips * f / 1000 / p }'
  done
done
echo
if [ "$ROUNDS" -gt 1 ]; then
  for model in dense cnn; do
    echo "${RATIOS[$model]}" | tr ' ' '\n' | grep . | sort -n |
      awk -v m="$model" -v n="$ROUNDS" '{ r[NR] = $1 } END { printf "%s: median ours / best PyTorch %.2f over %d rounds (%s to %s)\n", m, (n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2), n, r[1], r[n] }'
  done
  echo
fi
# Loading and checking the four files (gunzip, SHA-256, parsing), libtorch already loaded.
cargo run --release --quiet --example load_time -- "$DATA" | tail -1
echo
echo "logs in $OUT/"
