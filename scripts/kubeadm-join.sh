#!/usr/bin/env bash
# `kubeadm join` this node, once. The secrets (token, CA pin, certificate key) come from a
# root-only file written just before; they are filled into the JoinConfiguration template
# inside this shell (no secret on any command line) and the file is removed afterwards.
# Parameters: NODE_NAME CONFIG SECRETS_FILE CONTROL_PLANE(true|false); LOG, KUBELET_CONF, RUN_DIR (tests)
set -euo pipefail
: "${NODE_NAME:?}" "${CONFIG:?}" "${SECRETS_FILE:?}" "${CONTROL_PLANE:?}"
LOG="${LOG:-/var/log/seoul/kubeadm-join.log}"
KUBELET_CONF="${KUBELET_CONF:-/etc/kubernetes/kubelet.conf}"
RUN_DIR="${RUN_DIR:-/run}"

if [[ -f "$KUBELET_CONF" ]]; then
  echo "$NODE_NAME has already joined"
  rm -f "$SECRETS_FILE"
  exit 0
fi
if [[ ! -r "$SECRETS_FILE" ]]; then
  echo "$SECRETS_FILE is missing; re-run 'pulumi up' so the join material is written again" >&2
  exit 1
fi

value() { sed -n "s/^$1=//p" "$SECRETS_FILE"; }
token=$(value TOKEN)
hash=$(value CA_CERT_HASH)
if [[ -z "$token" ]]; then
  echo "no join material in $SECRETS_FILE: the first control plane already has a Node named $NODE_NAME." \
    "If this host was reset, delete that Node and replace the $NODE_NAME-join-token step" \
    "(pulumi up --target-replace)." >&2
  exit 1
fi
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || { echo "malformed TOKEN in $SECRETS_FILE" >&2; exit 1; }
[[ "$hash" =~ ^sha256:[a-f0-9]{64}$ ]] || { echo "malformed CA_CERT_HASH in $SECRETS_FILE" >&2; exit 1; }
template=$(<"$CONFIG")
template=${template//@@TOKEN@@/$token}
template=${template//@@CA_CERT_HASH@@/$hash}
if [[ "$CONTROL_PLANE" == "true" ]]; then
  key=$(value CERTIFICATE_KEY)
  [[ "$key" =~ ^[a-f0-9]{64}$ ]] || { echo "malformed CERTIFICATE_KEY in $SECRETS_FILE" >&2; exit 1; }
  template=${template//@@CERTIFICATE_KEY@@/$key}
fi
if [[ "$template" == *@@*@@* ]]; then
  echo "unfilled placeholder left in the join configuration" >&2
  exit 1
fi

umask 077
work=$(mktemp -d "$RUN_DIR/seoul-join.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$template" >"$work/join.yaml"
install -d -m 0700 "$(dirname "$LOG")"
if ! kubeadm join --config "$work/join.yaml" >>"$LOG" 2>&1; then
  echo "kubeadm join failed on $NODE_NAME; last lines of $LOG:" >&2
  tail -n 40 "$LOG" | grep -viE 'token|certificate-key' >&2 || true
  exit 1
fi
rm -f "$SECRETS_FILE"
echo "$NODE_NAME joined the cluster$([[ "$CONTROL_PLANE" == "true" ]] && echo ' as a control plane')"
