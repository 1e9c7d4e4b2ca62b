#!/usr/bin/env bash
# Variant C of scripts/bench: a ServiceAccount plus `kubectl create token`
# (the TokenRequest API: a bound token that expires, 1 h by default), then the
# same curl as the docs' recipe.
#
#   usage: scripts/bench_kubectl_token.sh NAMESPACE SERVICEACCOUNT    (uses $KUBECONFIG)
#
# Prints curl's output (the APIVersions object) on stdout.
set -euo pipefail
NS=$1
SA=$2

kubectl create serviceaccount "$SA" -n "$NS"
TOKEN=$(kubectl create token "$SA" -n "$NS")
APISERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')

curl -s "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --insecure
