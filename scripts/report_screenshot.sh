#!/usr/bin/env bash
# Renders a run's report.html (written by `evaluate RUN`) in a real browser, headless
# Chromium from Debian's packages (installed here when missing, as root), and saves a
# screenshot of the whole page:
#
#   scripts/report_screenshot.sh RUN [OUT.png]      # default: RUN/report.png
set -euo pipefail
say() { printf 'report_screenshot: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: scripts/report_screenshot.sh RUN [OUT.png]"
run=$1
page="$run/report.html"
out=${2:-$run/report.png}
[ -f "$page" ] || die "$page does not exist: run evaluate $run first"
browser=$("$(dirname "${BASH_SOURCE[0]}")/test_tools.sh" chromium) ||
  die "no chromium here: install Debian's chromium (apt-get install chromium)"
# tall enough for the whole page: the report is one column
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1100,4200 --screenshot="$(realpath -m "$out")" \
  "file://$(realpath "$page")" >/dev/null 2>&1
[ -s "$out" ] || die "chromium wrote no screenshot to $out"
say "wrote $out"
