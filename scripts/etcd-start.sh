#!/usr/bin/env bash
# Start this etcd member, or restart it when its settings changed, without costing quorum.
#
# - Data dir holds a member: (re)start only when FINGERPRINT differs from the last applied
#   one or etcd is down; a restart first checks that every other member is healthy and
#   then waits until this member is healthy again (the members' steps run one after
#   another, so a rolling change never takes two members down).
# - Empty data dir and a healthy cluster reachable among the other members: this is a new
#   member joining a running cluster. Add it with `member add` (if not listed yet) and
#   start with initial-cluster-state=existing and the cluster's own member list.
#   If the cluster lists this peer URL as a *started* member, its data was lost (disk
#   replaced, host reinstalled): starting as that member would make etcd panic
#   ("tocommit out of range"), so the stale member is removed through a surviving
#   member first, then added again like a new one.
# - Empty data dir and no healthy cluster: first bootstrap; start without waiting
#   (quorum forms once enough members are up; etcd-health.sh waits for it).
# Parameters: NAME PEER_URL CONF DATA_DIR CA_CERT CERT KEY BIN_DIR OTHER_ENDPOINTS FINGERPRINT;
#             STAMP, LOCAL_ENDPOINT, HEALTHY_WITHIN (seconds; tests)
set -euo pipefail
: "${NAME:?}" "${PEER_URL:?}" "${CONF:?}" "${DATA_DIR:?}" "${CA_CERT:?}" "${CERT:?}" "${KEY:?}" "${BIN_DIR:?}" "${FINGERPRINT:?}"
OTHER_ENDPOINTS="${OTHER_ENDPOINTS:-}"
STAMP="${STAMP:-/etc/etcd/.seoul-applied-fingerprint}"
LOCAL="${LOCAL_ENDPOINT:-https://127.0.0.1:2379}"

ctl() {
  ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
    --dial-timeout=3s --command-timeout=15s "$@"
}

HEALTHY_WITHIN="${HEALTHY_WITHIN:-120}"

# Bounded by the clock, not by a count of tries: each try may itself take seconds.
wait_local_healthy() {
  local deadline=$((SECONDS + HEALTHY_WITHIN))
  while ((SECONDS < deadline)); do
    if ctl --command-timeout=5s --endpoints "$LOCAL" endpoint health >/dev/null 2>&1; then
      echo "etcd member $NAME is healthy"
      return 0
    fi
    sleep 2
  done
  echo "etcd member $NAME did not become healthy within ${HEALTHY_WITHIN}s" >&2
  journalctl -u etcd -n 30 --no-pager >&2 || true
  return 1
}

# A membership change through $live, retried while etcd's strict reconfig check refuses it
# ("unhealthy cluster": every member must have been connected for a few seconds).
reconfigure() {
  local out
  for _ in $(seq 1 30); do
    if out=$(ctl --endpoints "$live" member "$@" 2>&1); then
      echo "$out"
      return 0
    fi
    if [[ "$out" != *"unhealthy cluster"* ]]; then
      echo "$out" >&2
      return 1
    fi
    sleep 2
  done
  echo "the cluster stayed unhealthy for 60s; not running member $1 for $NAME" >&2
  return 1
}

# Peer URL -> name as rendered in the config; an unstarted member has no name in
# `member list`, so its name comes from here.
rendered_name() {
  sed -n 's/^initial-cluster: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CONF" | tr ',' '\n' |
    awk -F= -v url="$1" '$2 == url { print $1 }'
}

systemctl daemon-reload

if [[ -d "$DATA_DIR/member" ]]; then
  if [[ "$(cat "$STAMP" 2>/dev/null || true)" == "$FINGERPRINT" ]] && systemctl is-active --quiet etcd; then
    echo "etcd member $NAME is running with the current settings"
    exit 0
  fi
  if systemctl is-active --quiet etcd && [[ -n "$OTHER_ENDPOINTS" ]]; then
    if ! ctl --endpoints "$OTHER_ENDPOINTS" endpoint health; then
      echo "not restarting $NAME: another member is unhealthy and a restart could cost quorum" >&2
      exit 1
    fi
  fi
  systemctl enable etcd
  # Blocks until the new process reports ready (Type=notify), so the health check below
  # cannot see the old process; bounded, as the unit itself waits without limit.
  if ! timeout 300 systemctl restart etcd; then
    echo "etcd on $NAME did not report ready within 300s after the restart" >&2
  fi
  wait_local_healthy
  echo "$FINGERPRINT" >"$STAMP"
  exit 0
fi

live=""
for endpoint in ${OTHER_ENDPOINTS//,/ }; do
  if ctl --command-timeout=5s --endpoints "$endpoint" endpoint health >/dev/null 2>&1; then
    live="$endpoint"
    break
  fi
done

if [[ -n "$live" ]]; then
  members=$(ctl --endpoints "$live" member list -w simple)
  stale=$(awk -F', ' -v url="$PEER_URL" '$4 == url && $2 == "started" { print $1 }' <<<"$members")
  if [[ -n "$stale" ]]; then
    echo "$NAME is a started member ($stale) of the cluster but its data dir is empty (disk replaced or" \
      "host reinstalled): removing the stale member via $live, then adding it again"
    systemctl stop etcd 2>/dev/null || true
    reconfigure remove "$stale" >/dev/null
    members=$(ctl --endpoints "$live" member list -w simple)
  fi
  if ! awk -F', ' -v url="$PEER_URL" '$4 == url { found = 1 } END { exit !found }' <<<"$members"; then
    if grep -q ', unstarted, ' <<<"$members"; then
      echo "another added member has not started yet; add etcd members one at a time" >&2
      exit 1
    fi
    echo "adding $NAME ($PEER_URL) to the running cluster via $live"
    reconfigure add "$NAME" --peer-urls "$PEER_URL" >/dev/null
    members=$(ctl --endpoints "$live" member list -w simple)
  fi
  cluster=""
  while IFS= read -r line; do
    name=$(awk -F', ' '{ print $3 }' <<<"$line")
    url=$(awk -F', ' '{ print $4 }' <<<"$line")
    if [[ "$url" == "$PEER_URL" ]]; then name="$NAME"; fi
    if [[ -z "$name" ]]; then name=$(rendered_name "$url"); fi
    if [[ -z "$name" ]]; then
      echo "member $url is not started and not in $CONF; finish or remove that member first" >&2
      exit 1
    fi
    cluster="${cluster:+$cluster,}$name=$url"
  done <<<"$members"
  # `existing` is right both for a member added just now and for an original member that
  # starts after the others formed the cluster (checked against etcd 3.4 on loopback): it takes the
  # membership from the running cluster, which must match initial-cluster exactly.
  sed -i -e "s|^initial-cluster-state: .*|initial-cluster-state: existing|" \
    -e "s|^initial-cluster: .*|initial-cluster: \"$cluster\"|" "$CONF"
  echo "joining the running cluster as $NAME: $cluster"
  systemctl enable etcd
  systemctl start --no-block etcd
  wait_local_healthy
else
  echo "no healthy cluster among the other members: bootstrapping $NAME from $CONF"
  systemctl enable etcd
  systemctl start --no-block etcd
fi
echo "$FINGERPRINT" >"$STAMP"
