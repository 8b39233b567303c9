#!/usr/bin/env bash
# Create one Ceph pool or bring it to its settings in place (never recreated, never deleted).
# Safe to run twice: each change is made only when the cluster differs, and printed as
# "changed: ..."; a run that prints none changed nothing.
# Parameters: POOL_NAME POOL_TYPE (replicated|erasure) APPLICATION (rbd|cephfs|rgw)
#   FAILURE_DOMAIN (host) RBD_INIT (true|false)
#   replicated: SIZE MIN_SIZE CRUSH_RULE
#   erasure:    K M PROFILE EC_OVERWRITES (true|false)
set -euo pipefail
: "${POOL_NAME:?}" "${POOL_TYPE:?}" "${APPLICATION:?}" "${FAILURE_DOMAIN:?}" "${RBD_INIT:?}"

changed() { echo "changed: pool $POOL_NAME: $*"; }
pool_get() { ceph osd pool get "$POOL_NAME" "$1" | awk '{print $2}'; }
pool_set() {
  if [[ "$(pool_get "$1")" != "$2" ]]; then
    ceph osd pool set "$POOL_NAME" "$1" "$2" >/dev/null
    changed "$1 $2"
  fi
}
exists() { ceph osd pool ls | grep -qxF "$POOL_NAME"; }

if [[ "$POOL_TYPE" == replicated ]]; then
  : "${SIZE:?}" "${MIN_SIZE:?}" "${CRUSH_RULE:?}"
  if ! ceph osd crush rule ls | grep -qxF "$CRUSH_RULE"; then
    ceph osd crush rule create-replicated "$CRUSH_RULE" default "$FAILURE_DOMAIN"
    echo "changed: crush rule $CRUSH_RULE (one copy per $FAILURE_DOMAIN)"
  fi
  if ! exists; then
    ceph osd pool create "$POOL_NAME" replicated "$CRUSH_RULE" >/dev/null
    changed "created (replicated, rule $CRUSH_RULE)"
  fi
  pool_set crush_rule "$CRUSH_RULE"
  # Raising size first keeps min_size <= size at every moment; lowering, min_size goes first.
  if (( SIZE >= $(pool_get size) )); then
    pool_set size "$SIZE"; pool_set min_size "$MIN_SIZE"
  else
    pool_set min_size "$MIN_SIZE"; pool_set size "$SIZE"
  fi
else
  : "${K:?}" "${M:?}" "${PROFILE:?}" "${EC_OVERWRITES:?}"
  want="k=$K m=$M crush-failure-domain=$FAILURE_DOMAIN"
  if exists && [[ "$(pool_get erasure_code_profile)" != "$PROFILE" ]]; then
    echo "pool $POOL_NAME uses profile $(pool_get erasure_code_profile), not $PROFILE: k and m of a pool" \
      "never change; create a new pool and move the data" >&2
    exit 1
  fi
  if ceph osd erasure-code-profile ls | grep -qxF "$PROFILE"; then
    have=$(ceph osd erasure-code-profile get "$PROFILE")
    for kv in $want; do
      if ! grep -qxF "$kv" <<<"$have"; then
        echo "erasure-code profile $PROFILE exists without $kv; profiles never change in place" >&2
        exit 1
      fi
    done
  else
    # shellcheck disable=SC2086 # $want is three key=value words
    ceph osd erasure-code-profile set "$PROFILE" $want
    echo "changed: erasure-code profile $PROFILE ($want)"
  fi
  if ! exists; then
    ceph osd pool create "$POOL_NAME" erasure "$PROFILE" >/dev/null
    changed "created (erasure, profile $PROFILE)"
  fi
  # RBD and CephFS write in place: EC overwrites (BlueStore only).
  if [[ "$EC_OVERWRITES" == true ]]; then
    pool_set allow_ec_overwrites true
  fi
fi

pool_set pg_autoscale_mode on
if ! ceph osd pool application get "$POOL_NAME" | grep -q "\"$APPLICATION\""; then
  ceph osd pool application enable "$POOL_NAME" "$APPLICATION" >/dev/null
  changed "application $APPLICATION"
fi
if [[ "$RBD_INIT" == true ]] && ! rados -p "$POOL_NAME" stat rbd_info >/dev/null 2>&1; then
  rbd pool init "$POOL_NAME"
  changed "rbd pool init"
fi
echo "pool $POOL_NAME: $(ceph osd pool ls detail | grep -F "'$POOL_NAME'" | cut -c1-200)"
