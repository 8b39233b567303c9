#!/usr/bin/env bash
# Undo kubeadm on this node (the delete of its init/join step). Runs after the node was
# drained and deleted from the cluster (node-drain.sh on the first control plane).
# Parameters: NODE_NAME CRI_SOCKET
set -euo pipefail
: "${NODE_NAME:?}" "${CRI_SOCKET:?}"

if ! command -v kubeadm >/dev/null || [[ ! -e /etc/kubernetes/kubelet.conf && ! -d /etc/kubernetes/manifests ]]; then
  echo "$NODE_NAME has no kubeadm state"
  exit 0
fi
kubeadm reset --force --cri-socket "$CRI_SOCKET"
# kubeadm reset leaves CNI config and iptables rules behind; the CNI config would make a
# later join start pods with stale settings. iptables rules are cleared by a reboot.
rm -rf /etc/cni/net.d
systemctl disable kubelet || true
echo "kubeadm reset done on $NODE_NAME"
