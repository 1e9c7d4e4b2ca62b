#!/usr/bin/env bash
# Variant B of scripts/bench: the manual recipe from the Kubernetes docs,
# "Access Clusters Using the Kubernetes API" (section "Without kubectl proxy"):
# a ServiceAccount, a Secret of type kubernetes.io/service-account-token, a
# polling loop until the token controller fills it, then curl /api with it.
#
#   usage: scripts/bench_recipe.sh NAMESPACE SERVICEACCOUNT    (uses $KUBECONFIG)
#
# Kept as close to the docs as possible; the only additions are `-n "$NS"` and
# quoting. Like the docs, curl uses --insecure. Prints curl's output (the
# APIVersions object) on stdout.
set -euo pipefail
NS=$1
SA=$2
SECRET="$SA-token"

kubectl create serviceaccount "$SA" -n "$NS"

kubectl apply -n "$NS" -f - <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $SECRET
  annotations:
    kubernetes.io/service-account.name: $SA
type: kubernetes.io/service-account-token
YAML

# Wait for the token controller to populate the secret with a token
# (the docs' loop; its output goes to /dev/null so the token is never printed).
while ! kubectl describe secret "$SECRET" -n "$NS" | grep -E '^token' >/dev/null; do
  echo "waiting for token..." >&2
  sleep 1
done

TOKEN=$(kubectl get secret "$SECRET" -n "$NS" -o jsonpath='{.data.token}' | base64 -d)
APISERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')

curl -s "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --insecure
