#!/usr/bin/env bash
# Installs a program that some tests run beside the project's own binaries, from Debian's
# packages, where it is missing, and prints its path:
#
#   scripts/test_tools.sh parallel   GNU parallel: tests/sweep.rs hands a sweep's planned
#                                    runs to it
#   scripts/test_tools.sh chromium   headless Chromium: tests/shared_folders.rs opens
#                                    report.html in it; scripts/report_screenshot.sh
#
# Run as root, or with sudo; running it again checks what is there. The trainers need
# neither.
set -euo pipefail
say() { printf 'test_tools: %s\n' "$*" >&2; }
tool=${1:-}
case "$tool" in
  parallel | chromium) ;;
  *) say "usage: scripts/test_tools.sh parallel|chromium"; exit 2 ;;
esac
if command -v "$tool" >/dev/null 2>&1; then
  command -v "$tool"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install $tool with your package manager"
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
say "installing Debian's $tool"
if ! $sudo apt-get install -y -qq "$tool" >/dev/null 2>&1; then
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  $sudo apt-get install -y -qq "$tool" >/dev/null
fi
command -v "$tool"
