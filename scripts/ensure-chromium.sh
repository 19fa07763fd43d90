#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
echo "setup: installing Debian's chromium for the browser tests"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: /usr/bin/chromium is missing and apt-get is not available; install Chromium" >&2
  exit 1
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
  || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
/usr/bin/chromium --version
