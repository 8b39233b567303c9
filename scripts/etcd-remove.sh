#!/usr/bin/env bash
# Take this member out of the etcd cluster (the delete of its start step), in the safe order:
#   1. refuse unless every remaining member is healthy (removal must not cost quorum);
#   2. `member remove` it while it still runs, so the cluster shrinks its quorum first;
#   3. stop and disable etcd here and move the data dir aside (kept, not deleted).
# The last member of a cluster (stack destroy) is simply stopped.
# Parameters: NAME PEER_URL DATA_DIR CA_CERT CERT KEY BIN_DIR OTHER_ENDPOINTS; LOCAL_ENDPOINT (tests)
set -euo pipefail
: "${NAME:?}" "${PEER_URL:?}" "${DATA_DIR:?}" "${CA_CERT:?}" "${CERT:?}" "${KEY:?}" "${BIN_DIR:?}"
OTHER_ENDPOINTS="${OTHER_ENDPOINTS:-}"
LOCAL="${LOCAL_ENDPOINT:-https://127.0.0.1:2379}"

ctl() {
  ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
    --dial-timeout=3s --command-timeout=15s "$@"
}

if [[ ! -d "$DATA_DIR/member" ]]; then
  echo "etcd member $NAME holds no data; nothing to remove"
  systemctl disable --now etcd-snapshot.timer etcd-certs-renew.timer etcd 2>/dev/null || true
  exit 0
fi

endpoints="$LOCAL${OTHER_ENDPOINTS:+,$OTHER_ENDPOINTS}"
members=$(ctl --endpoints "$endpoints" member list -w simple)
id=$(awk -F', ' -v url="$PEER_URL" '$4 == url { print $1 }' <<<"$members")
remaining=$(awk -F', ' -v url="$PEER_URL" '$4 != url && $5 != "" { print $5 }' <<<"$members" | paste -sd ,)

if [[ -n "$id" && -n "$remaining" ]]; then
  if ! ctl --endpoints "$remaining" endpoint health; then
    echo "refusing to remove $NAME: a remaining member is unhealthy; fix it first" >&2
    exit 1
  fi
  # etcd refuses a membership change until every member has been connected for a few
  # seconds (strict reconfig check: "unhealthy cluster"), e.g. right after a restart.
  removed=0
  for _ in $(seq 1 30); do
    if out=$(ctl --endpoints "$remaining" member remove "$id" 2>&1); then
      removed=1
      break
    fi
    if [[ "$out" != *"unhealthy cluster"* ]]; then
      echo "$out" >&2
      exit 1
    fi
    sleep 2
  done
  if ((removed == 0)); then
    echo "the cluster stayed unhealthy for 60s; not removing $NAME" >&2
    exit 1
  fi
  echo "removed etcd member $NAME ($id); remaining: $remaining"
elif [[ -n "$id" ]]; then
  echo "$NAME is the last etcd member; stopping it without a membership change"
fi

systemctl disable --now etcd-snapshot.timer etcd-certs-renew.timer 2>/dev/null || true
systemctl disable --now etcd
archive="$DATA_DIR/member.removed-$(date -u +%Y%m%dT%H%M%SZ)"
mv "$DATA_DIR/member" "$archive"
echo "stopped etcd on $NAME; its data is kept in $archive"
