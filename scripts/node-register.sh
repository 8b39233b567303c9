#!/usr/bin/env bash
# On the first control plane: wait for a joined node's Node object and set the role labels
# a kubelet may not set on itself.
# Parameters: NODE_NAME LABELS (space-separated key=value, may be empty)
set -euo pipefail
: "${NODE_NAME:?}"
LABELS="${LABELS:-}"
export KUBECONFIG=/etc/kubernetes/admin.conf

for _ in $(seq 1 60); do
  if kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
    break
  fi
  sleep 5
done
kubectl get node "$NODE_NAME" >/dev/null
if [[ -n "$LABELS" ]]; then
  # shellcheck disable=SC2086 # one argument per label
  kubectl label node "$NODE_NAME" --overwrite $LABELS
fi
echo "node $NODE_NAME registered"
