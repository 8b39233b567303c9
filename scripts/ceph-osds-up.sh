#!/usr/bin/env bash
# Wait until HOST runs COUNT OSDs that are up and in (cephadm deploys them after the spec).
# Parameters: HOST COUNT TIMEOUT_SECONDS
set -euo pipefail
: "${HOST:?}" "${COUNT:?}" "${TIMEOUT_SECONDS:?}"

count_up() {
  ceph osd tree --format json | python3 -c '
import json, sys
tree = json.load(sys.stdin)
nodes = {n["id"]: n for n in tree["nodes"]}
host = next((n for n in tree["nodes"] if n["type"] == "host" and n["name"] == sys.argv[1]), None)
osds = [nodes[i] for i in (host or {}).get("children", [])]
print(sum(o.get("status") == "up" and o.get("reweight", 0) > 0 for o in osds))' "$HOST"
}
deadline=$((SECONDS + TIMEOUT_SECONDS))
next_report=0
until (( $(count_up) >= COUNT )); do
  if ((SECONDS >= deadline)); then
    echo "$HOST: $(count_up) of $COUNT OSDs up after ${TIMEOUT_SECONDS}s" >&2
    ceph orch ps "$HOST" >&2 || true
    exit 1
  fi
  if ((SECONDS >= next_report)); then
    echo "$HOST: $(count_up) of $COUNT OSDs up"
    next_report=$((SECONDS + 60))
  fi
  sleep 10
done
echo "$HOST: $COUNT OSDs up"
