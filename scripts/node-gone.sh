#!/usr/bin/env bash
# On the init node, for a node marked failed (its machine is gone): delete its Node object
# and force-delete the pods still bound to it, so their controllers place them elsewhere.
# No drain: a dead kubelet never confirms an eviction, and a drain would wait forever.
# Parameters: NODE_NAME
set -euo pipefail
: "${NODE_NAME:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf

if ! kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  echo "node $NODE_NAME is not in the cluster"
  exit 0
fi
kubectl cordon "$NODE_NAME"
kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
  --force --grace-period=0 --wait=false
kubectl delete node "$NODE_NAME" --wait=false --timeout=60s
echo "node $NODE_NAME (failed) deleted; its pods are rescheduled on the live nodes"
