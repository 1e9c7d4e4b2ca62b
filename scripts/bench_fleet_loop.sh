#!/usr/bin/env bash
# The loop a user writes to get a token for each cluster of a fleet, one after
# another: create the ServiceAccount (ignore "already exists"), then
# `kubectl create token`. Usage: bench_fleet_loop.sh NAMESPACE SA OUTDIR CONTEXT...
set -euo pipefail
ns=$1 sa=$2 out=$3
shift 3
for ctx in "$@"; do
  kubectl --context "$ctx" -n "$ns" create serviceaccount "$sa" >/dev/null 2>&1 || true
  kubectl --context "$ctx" -n "$ns" create token "$sa" >"$out/$ctx.token"
done
