#!/usr/bin/env bash
# Checks the CUDA path on a GPU machine that has PyTorch 2.11.0 in Python but no Rust.
#
#   scripts/gpu_check.sh prepare   here: install the CUDA layout of libtorch into
#                                  libtorch.cuda/, build the binaries against it
#                                  (target/cuda/), and gather binaries, data and the
#                                  PyTorch reference into .gpu/ (git-ignored, < 64 MiB)
#   scripts/gpu_check.sh run       there, from the repository root: both trainers with
#                                  --device cuda (and train_cnn --recipe strong) and
#                                  the same steps in plain PyTorch,
#                                  logs into $OUT (or .gpu/out), and a side-by-side ratio
#
# The binaries find libtorch there through LD_LIBRARY_PATH, set from Python's torch.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EPOCHS_DENSE=${EPOCHS_DENSE:-5}
EPOCHS_CNN=${EPOCHS_CNN:-10}
EPOCHS_STRONG=${EPOCHS_STRONG:-18} # the recipe's own

prepare() {
  scripts/setup_libtorch.sh --device cuda --dir "$ROOT/libtorch.cuda"
  LIBTORCH="$ROOT/libtorch.cuda" CARGO_TARGET_DIR="$ROOT/target/cuda" \
    cargo build --release --bins
  rm -rf .gpu
  mkdir -p .gpu/data
  for bin in train_dense train_cnn; do
    strip -o ".gpu/$bin" "target/cuda/release/$bin"
  done
  data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
  [ -d data/fashion-mnist ] && data=data/fashion-mnist
  cp "$data"/*-ubyte* .gpu/data/
  cp bench/reference.py .gpu/
  du -sh .gpu
  echo "ready: run 'scripts/gpu_check.sh run' on the GPU machine with .gpu/ beside it"
}

epoch_seconds() { # mean seconds of the epochs after the first (warm-up) in a log
  awk '/^epoch/ { for (i = 1; i <= NF; i++) if ($i == "s") t = $(i - 1); n++; if (n > 1) { s += t; m++ } }
       / seconds / { for (i = 1; i <= NF; i++) if ($i == "seconds") t = $(i + 1); n++; if (n > 1) { s += t; m++ } }
       END { if (m) printf "%.2f", s / m; else print "nan" }' "$1"
}

run() {
  out=${OUT:-.gpu/out}
  mkdir -p "$out"
  torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  {
    nvidia-smi -L
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  } 2>&1 | tee "$out/device.txt"
  chmod +x .gpu/train_dense .gpu/train_cnn
  .gpu/train_dense --device cuda --data-dir .gpu/data --epochs "$EPOCHS_DENSE" --quiet \
    --out "$out/dense" 2>&1 | tee "$out/train_dense.log"
  .gpu/train_cnn --device cuda --data-dir .gpu/data --epochs "$EPOCHS_CNN" --quiet \
    --out "$out/cnn" 2>&1 | tee "$out/train_cnn.log"
  # the strong recipe's augmentation, batch norm and schedule on the GPU
  .gpu/train_cnn --device cuda --recipe strong --data-dir .gpu/data --epochs "$EPOCHS_STRONG" \
    --quiet --out "$out/strong" 2>&1 | tee "$out/train_cnn_strong.log"
  python3 .gpu/reference.py --model dense --device cuda --epochs "$EPOCHS_DENSE" \
    --data-dir .gpu/data 2>&1 | tee "$out/pytorch_dense.log"
  python3 .gpu/reference.py --model cnn --device cuda --epochs "$EPOCHS_CNN" \
    --data-dir .gpu/data 2>&1 | tee "$out/pytorch_cnn.log"
  {
    echo "seconds per epoch after the first (training and test scoring), batch 32:"
    for m in dense cnn; do
      ours=$(epoch_seconds "$out/train_$m.log")
      theirs=$(epoch_seconds "$out/pytorch_$m.log")
      ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')
      echo "$m: fashion-tch $ours s, PyTorch eager $theirs s, ratio $ratio"
    done
  } | tee "$out/summary.txt"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
