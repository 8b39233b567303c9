#!/usr/bin/env bash
# On the first control plane (delete of a node's registration step): cordon and drain the
# node, respecting PodDisruptionBudgets, then delete its Node object. A drain that cannot
# finish in time fails the step: nothing is forced.
# Parameters: NODE_NAME DRAIN_TIMEOUT
set -euo pipefail
: "${NODE_NAME:?}" "${DRAIN_TIMEOUT:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf

if ! kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  echo "node $NODE_NAME is not in the cluster"
  exit 0
fi
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT"
kubectl delete node "$NODE_NAME" --wait=true
echo "node $NODE_NAME drained and deleted"
