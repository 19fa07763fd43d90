#!/usr/bin/env bash
# Write fresh random secrets for the stack into DIR (default: deploy/secrets), one file each,
# as deploy/compose.yaml and the Kubernetes overlays read them. Existing files are kept.
#
#   deploy/new-secrets.sh [DIR]
#
# The directory is 0700 (only you on this host). The files are 0644 so that the services'
# unprivileged users can read them once Docker bind-mounts them read-only into a container
# (the services accept a world-readable secret only on a read-only mount); for Kubernetes,
# kustomize copies them into Secrets and the pods see them with mode 0440.
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"

random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

write() { # name value
  local path="$dir/$1"
  if [ -s "$path" ]; then echo "kept    $path"; return; fi
  (umask 077 && printf '%s\n' "$2" >"$path")
  chmod 644 "$path"
  echo "written $path"
}

value() { sed -n '1p' "$dir/$1"; }

write auth-secret "$(random)"
write llm-server-token "$(random)"
write metrics-token "$(random)"
write postgres-password "$(random)"
write redis-password "$(random)"
write grafana-admin-password "$(random)"
# Derived from the passwords above (host names as in compose.yaml and the single-node overlay).
write database-url "postgres://llm:$(value postgres-password)@postgres:5432/gateway"
write redis-conf "requirepass $(value redis-password)"
write redis-url "redis://:$(value redis-password)@redis:6379/0"
