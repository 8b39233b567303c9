#!/usr/bin/env bash
# On a live etcd member, for a member marked failed (its machine is gone): remove it from
# the cluster by its peer URL, so the quorum counts only live members and a replacement
# can be added. Never touches the dead host. Safe to run twice: a member no longer listed
# is left alone.
# Parameters: NAME (the failed member) PEER_URL CA_CERT CERT KEY BIN_DIR; LOCAL_ENDPOINT (tests)
set -euo pipefail
: "${NAME:?}" "${PEER_URL:?}" "${CA_CERT:?}" "${CERT:?}" "${KEY:?}" "${BIN_DIR:?}"
LOCAL="${LOCAL_ENDPOINT:-https://127.0.0.1:2379}"

ctl() {
  ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
    --dial-timeout=3s --command-timeout=15s --endpoints "$LOCAL" "$@"
}

id=$(ctl member list -w simple | awk -F', ' -v url="$PEER_URL" '$4 == url { print $1 }')
if [[ -z "$id" ]]; then
  echo "etcd member $NAME ($PEER_URL) is not in the cluster"
  exit 0
fi
# Retried while etcd's strict reconfig check refuses a change ("unhealthy cluster").
for _ in $(seq 1 30); do
  if out=$(ctl member remove "$id" 2>&1); then
    echo "removed failed etcd member $NAME ($id)"
    exit 0
  fi
  if [[ "$out" != *"unhealthy cluster"* ]]; then
    echo "$out" >&2
    exit 1
  fi
  sleep 2
done
echo "the cluster stayed unhealthy for 60s; $NAME is still a member" >&2
exit 1
