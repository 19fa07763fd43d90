#!/usr/bin/env bash
# Install the pinned uv (Python package and lock manager) into tools/uv. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="0.13.9"
uv="$root/tools/uv/bin/uv"
if [ -x "$uv" ] && [ "$("$uv" --version | cut -d' ' -f2)" = "$version" ]; then exit 0; fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python >= 3.11 is required (found $(python3 --version))" >&2; exit 1; }
rm -rf "$root/tools/uv"
python3 -m venv "$root/tools/uv"
"$root/tools/uv/bin/pip" install --quiet --disable-pip-version-check "uv==$version"
