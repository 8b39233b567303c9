#!/usr/bin/env bash
# Monthly on each control plane (a week apart across control planes): renew the etcd client
# certificate and every kubeadm-managed certificate, then restart the control-plane static
# pods one by one so they load the new certificates (kubeadm's documented procedure: move
# the manifest out, wait for the pod to stop, move it back, wait until healthy).
# Installed as /usr/local/sbin/seoul-kube-certs-renew; run by kube-certs-renew.timer.
# Parameters (EnvironmentFile): the etcd-certs.sh parameters for MODE=client
set -euo pipefail
MANIFESTS=/etc/kubernetes/manifests
HOLD=/etc/kubernetes/manifests-hold
export KUBECONFIG=/etc/kubernetes/admin.conf

/usr/local/sbin/seoul-etcd-client-cert
kubeadm certs renew all
kubeadm certs check-expiration

healthy() {
  case "$1" in
    kube-apiserver) curl --silent --fail --insecure --max-time 3 --output /dev/null https://127.0.0.1:6443/livez ;;
    kube-controller-manager) curl --silent --fail --insecure --max-time 3 --output /dev/null https://127.0.0.1:10257/healthz ;;
    kube-scheduler) curl --silent --fail --insecure --max-time 3 --output /dev/null https://127.0.0.1:10259/healthz ;;
  esac
}

install -d -m 0700 "$HOLD"
for component in kube-apiserver kube-controller-manager kube-scheduler; do
  mv "$MANIFESTS/$component.yaml" "$HOLD/$component.yaml"
  for _ in $(seq 1 30); do
    [[ -z "$(crictl ps --quiet --name "^$component\$" 2>/dev/null)" ]] && break
    sleep 2
  done
  mv "$HOLD/$component.yaml" "$MANIFESTS/$component.yaml"
  ok=0
  for _ in $(seq 1 60); do
    if healthy "$component"; then ok=1; break; fi
    sleep 3
  done
  if ((ok == 0)); then
    echo "$component did not become healthy after its restart; stopping here" >&2
    exit 1
  fi
  echo "$component restarted with renewed certificates"
done
/usr/local/sbin/seoul-cert-expiry || true
