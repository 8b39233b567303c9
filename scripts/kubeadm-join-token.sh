#!/usr/bin/env bash
# On the first control plane: mint join material for one node. Prints (to the caller's
# secret stdout, with logging off) a short-lived bootstrap token, the cluster CA pin and,
# for a control plane, a fresh certificate key for certificates uploaded just now.
# Parameters: NODE_NAME CONTROL_PLANE(true|false) TTL CONFIG; CA_CRT, RUN_DIR (tests)
set -euo pipefail
: "${NODE_NAME:?}" "${CONTROL_PLANE:?}" "${TTL:?}" "${CONFIG:?}"
CA_CRT="${CA_CRT:-/etc/kubernetes/pki/ca.crt}"
RUN_DIR="${RUN_DIR:-/run}"
export KUBECONFIG=/etc/kubernetes/admin.conf

if kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  # Already a node: mint nothing, so a re-run never leaves a live token on a joined host.
  echo "# $NODE_NAME is already a node of the cluster; no join material"
  exit 0
fi

token=$(kubeadm token create --ttl "$TTL" --description "join $NODE_NAME (seoul-cluster)" \
  --usages signing,authentication --groups system:bootstrappers:kubeadm:default-node-token)
hash=$(openssl x509 -pubkey -noout -in "$CA_CRT" |
  openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | awk '{ print $NF }')

# Nothing is printed until every step has worked: the provider puts a failed step's whole
# output into its error message, which no logging setting hides. A failure after the
# token exists deletes it.
trap 'kubeadm token delete "$token" >/dev/null 2>&1 || true' ERR
output="TOKEN=${token}"$'\n'"CA_CERT_HASH=sha256:${hash}"
if [[ "$CONTROL_PLANE" == "true" ]]; then
  key=$(kubeadm certs certificate-key)
  # Upload the shared control-plane certificates (including the external etcd CA and
  # client certificate) encrypted with the new key; the Secret expires after two hours.
  # The key goes in through a private copy of the config (kubeadm does not mix --config
  # with most flags, and a key on the command line would show in `ps`).
  umask 077
  work=$(mktemp -d "$RUN_DIR/seoul-upload-certs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [[ "$line" == "kind: InitConfiguration" ]]; then printf 'certificateKey: %s\n' "$key"; fi
  done <"$CONFIG" >"$work/config.yaml"
  grep -q '^certificateKey: ' "$work/config.yaml" || { echo "no InitConfiguration in $CONFIG" >&2; exit 1; }
  kubeadm init phase upload-certs --upload-certs --config "$work/config.yaml" >/dev/null
  output+=$'\n'"CERTIFICATE_KEY=${key}"
fi
printf '%s\n' "$output"
