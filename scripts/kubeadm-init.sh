#!/usr/bin/env bash
# `kubeadm init` on the first control plane, once. Prints nothing secret: the default
# bootstrap token and the certificate key are never printed (and the token expires in
# minutes); the full kubeadm output stays in a root-only log on the host.
# Parameters: CONFIG NODE_NAME
set -euo pipefail
: "${CONFIG:?}" "${NODE_NAME:?}"
APPLIED=/etc/kubernetes/kubeadm-config.applied.yaml
LOG=/var/log/seoul/kubeadm-init.log
export KUBECONFIG=/etc/kubernetes/admin.conf

if [[ -f /etc/kubernetes/kubelet.conf && -f /etc/kubernetes/admin.conf ]]; then
  echo "$NODE_NAME is already initialised"
  if ! cmp -s "$CONFIG" "$APPLIED"; then
    echo "warning: $CONFIG differs from the config kubeadm init used ($APPLIED);" \
      "cluster-wide changes go through kubeadm upgrade (docs/kubernetes.md)" >&2
  fi
  exit 0
fi
if [[ -e /etc/kubernetes/manifests/kube-apiserver.yaml ]]; then
  echo "$NODE_NAME holds a partial control plane from an earlier attempt; inspect $LOG," \
    "then run 'kubeadm reset -f' on it before retrying. etcd is external: kubeadm reset leaves" \
    "the earlier attempt's objects in it, so wipe them too before retrying (on an etcd member:" \
    "etcdctl del / --prefix; docs/kubernetes.md, 'A failed kubeadm init')" >&2
  exit 1
fi

install -d -m 0700 "$(dirname "$LOG")"
umask 077
kubeadm config images pull --config "$CONFIG" >>"$LOG" 2>&1
if ! kubeadm init --config "$CONFIG" --skip-token-print --skip-certificate-key-print >>"$LOG" 2>&1; then
  echo "kubeadm init failed on $NODE_NAME; last lines of $LOG:" >&2
  tail -n 40 "$LOG" | grep -viE 'token|certificate-key' >&2 || true
  echo "before retrying: 'kubeadm reset -f' here, and wipe what this attempt wrote to the external" \
    "etcd (docs/kubernetes.md, 'A failed kubeadm init')" >&2
  exit 1
fi
install -m 0600 "$CONFIG" "$APPLIED"

for _ in $(seq 1 60); do
  if kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "kubeadm init done on $NODE_NAME; API ready at $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')"
    exit 0
  fi
  sleep 5
done
echo "the API server did not become ready through the control-plane endpoint" >&2
exit 1
