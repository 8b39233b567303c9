#!/usr/bin/env bash
# `cephadm bootstrap` on the pinned bootstrap host, once. Does nothing when this host already
# holds the cluster's config and admin keyring (a second run, or a later change of anything).
# No monitoring stack (the observability stack scrapes the mgr's prometheus module), no
# dashboard (its first password would be printed), firewalld left to the hosts component.
# Parameters: FSID MON_IP IMAGE SSH_USER CONF_DIR [CLUSTER_NETWORK]
set -euo pipefail
: "${FSID:?}" "${MON_IP:?}" "${IMAGE:?}" "${SSH_USER:?}" "${CONF_DIR:?}"

if [[ -s "$CONF_DIR/ceph.conf" && -s "$CONF_DIR/ceph.client.admin.keyring" ]]; then
  have=$(awk -F' = ' '$1 ~ /fsid/ {print $2; exit}' "$CONF_DIR/ceph.conf")
  if [[ "$have" != "$FSID" ]]; then
    echo "$CONF_DIR/ceph.conf belongs to cluster $have, not $FSID: refusing to bootstrap over it" >&2
    exit 1
  fi
  echo "cluster $FSID exists; bootstrap not re-run"
  exit 0
fi
args=(--fsid "$FSID" --mon-ip "$MON_IP" --ssh-user "$SSH_USER" --output-dir "$CONF_DIR"
  --skip-monitoring-stack --skip-dashboard --skip-firewalld)
if [[ -n "${CLUSTER_NETWORK:-}" ]]; then
  args+=(--cluster-network "$CLUSTER_NETWORK")
fi
cephadm --image "$IMAGE" bootstrap "${args[@]}"
