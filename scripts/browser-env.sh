#!/usr/bin/env bash
# Makes the browser the web page's tests run in: Debian's chromium package (driven by
# playwright-core at /usr/bin/chromium; never a browser build downloaded by a test tool).
# Installs it when it is missing and this runs as root with apt-get; otherwise says what to do
# and fails, which scripts/test.mjs counts as a failure under CI=true only (as for the peers).
# MODELBRIDGE_CHROMIUM names another Chromium binary.
set -euo pipefail
chromium="${MODELBRIDGE_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$chromium" ]]; then
  echo "browser present: $chromium"
  exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y --no-install-recommends chromium >/dev/null; }
  [[ -x "$chromium" ]] && { echo "browser installed: $chromium"; exit 0; }
fi
echo "no Chromium at $chromium: install Debian's chromium package (apt-get install chromium) to run the web page's tests" >&2
exit 1
