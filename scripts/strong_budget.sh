#!/usr/bin/env bash
# The strong recipe's final fit against its time budget, on this machine, now:
#
#   scripts/strong_budget.sh [SEED...]   (default seeds 0 1 2; run after setup_libtorch.sh)
#
# The budget travels between machines: a final fit may take at most 100 times the lesson
# CNN's first epoch measured in the same sitting. So this times one epoch of the lesson
# CNN (`train_cnn --epochs 1`), then, back to back, `train_cnn --recipe strong
# --validation 0 --seed S` for each seed, and prints each fit's test accuracy, its time
# and its share of the budget, then the mean. Nothing else should run meanwhile.
#
# The release binary is built first and copied aside, so no later build changes it
# mid-run. The run folders stay in .bench/strong (git-ignored): `evaluate` on each gives
# its figure back. The times are wall-clock seconds from start to exit, loading the data
# and scoring the test set after every epoch included. Each run writes what the user's
# command writes, TensorBoard events too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1 2)
for s in "${SEEDS[@]}"; do
  [[ "$s" =~ ^[0-9]+$ ]] || { echo "strong_budget: seeds are whole numbers, not '$s' (usage: scripts/strong_budget.sh [SEED...])" >&2; exit 2; }
done
OUT=.bench/strong
BIN=$OUT/bin
mkdir -p "$BIN"
cargo build --release --quiet --bin train_cnn
cp target/release/train_cnn "$BIN/train_cnn"
STAMP=$(date +%Y%m%d-%H%M%S)

# wall seconds of a command, its output kept in a log
timed() {
  local log=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1 || { echo "strong_budget: failed, see $log" >&2; tail -5 "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  calc "$end - $start"
}
calc() { awk "BEGIN { print $1 }"; }
# the last epoch's test accuracy in a run folder
accuracy() { tail -n 1 "$1/metrics.csv" | cut -d, -f5; }

lesson=$OUT/lesson-$STAMP
"$BIN/train_cnn" --epochs 1 --quiet --out "$lesson" >"$lesson.log" 2>&1
epoch=$(tail -n 1 "$lesson/metrics.csv" | cut -d, -f6)
budget=$(calc "100 * $epoch")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || { grep -qw avx2 /proc/cpuinfo && echo AVX2 || echo "no AVX2"; })
printf '%s, %s cores, %s; %s\n' "$cpu" "$(nproc)" "$isa" "$(date -u +%FT%TZ)"
printf 'lesson CNN first epoch: %.1f s, so the budget is %.0f s (%.1f min)\n' "$epoch" "$budget" "$(calc "$budget / 60")"
printf '%-6s %-14s %-10s %s\n' seed "test accuracy" seconds "of the budget"
sum=0
for s in "${SEEDS[@]}"; do
  run=$OUT/strong-s$s-$STAMP
  secs=$(timed "$run.log" "$BIN/train_cnn" --recipe strong --validation 0 --seed "$s" --quiet --out "$run")
  acc=$(accuracy "$run")
  sum=$(calc "$sum + $acc")
  printf '%-6s %-14s %-10.0f %.0f%%\n' "$s" "$acc" "$secs" "$(calc "100 * $secs / $budget")"
done
printf 'mean test accuracy %.4f over %d seeds; the runs are in %s/*-%s\n' "$(calc "$sum / ${#SEEDS[@]}")" "${#SEEDS[@]}" "$OUT" "$STAMP"
