#!/usr/bin/env bash
# Installs what some tests run beside the project's own binaries, from Debian's packages:
# GNU parallel (tests/sweep.rs hands a sweep's planned runs to it). Run as root, or with
# sudo; running it again checks what is there.
set -euo pipefail
say() { printf 'test_tools: %s\n' "$*"; }
if command -v parallel >/dev/null 2>&1; then
  say "GNU parallel is there: $(command -v parallel)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install GNU parallel with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
say "installing Debian's parallel"
if ! $sudo apt-get install -y -qq parallel >/dev/null 2>&1; then
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  $sudo apt-get install -y -qq parallel >/dev/null
fi
say "GNU parallel installed: $(command -v parallel)"
