#!/usr/bin/env bash
# Add a storage host to the orchestrator with its labels, or bring its labels to these
# (labels outside MANAGED_LABELS, e.g. _no_schedule during a drain, are left alone).
# Parameters: HOST ADDRESS LABELS MANAGED_LABELS (space-separated)
set -euo pipefail
: "${HOST:?}" "${ADDRESS:?}" "${LABELS?}" "${MANAGED_LABELS:?}"

hosts=$(ceph orch host ls --format json)
have=$(python3 -c '
import json, sys
for h in json.load(sys.stdin):
    if h["hostname"] == sys.argv[1]:
        print("present", *h.get("labels", []))' "$HOST" <<<"$hosts")
if [[ -z "$have" ]]; then
  ceph orch host add "$HOST" "$ADDRESS" --labels "${LABELS// /,}"
  echo "changed: host $HOST added ($LABELS)"
  exit 0
fi
for label in $LABELS; do
  if ! grep -qw -- "$label" <<<"${have#present}"; then
    ceph orch host label add "$HOST" "$label"
    echo "changed: $HOST label $label added"
  fi
done
for label in $MANAGED_LABELS; do
  if grep -qw -- "$label" <<<"${have#present}" && ! grep -qw -- "$label" <<<"$LABELS"; then
    ceph orch host label rm "$HOST" "$label"
    echo "changed: $HOST label $label removed"
  fi
done
