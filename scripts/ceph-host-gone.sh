#!/usr/bin/env bash
# On the bootstrap host, for a storage host marked failed (its machine is gone): purge its
# OSDs so Ceph re-creates their copies on the live hosts, then remove the host from the
# orchestrator offline. No drain: nothing can be moved off a dead host. Safe to run twice.
# Parameters: HOST
set -euo pipefail
: "${HOST:?}"

for id in $(ceph osd ls-tree "$HOST" 2>/dev/null || true); do
  ceph osd purge "$id" --yes-i-really-mean-it
  echo "changed: purged osd.$id of $HOST"
done
if ceph orch host ls --format json | grep -q "\"hostname\": \"$HOST\""; then
  ceph orch host rm "$HOST" --offline --force
  echo "changed: removed $HOST from the orchestrator"
fi
if ceph osd crush ls "$HOST" >/dev/null 2>&1; then
  ceph osd crush rm "$HOST"
  echo "changed: removed $HOST from the CRUSH map"
fi
echo "storage host $HOST (failed) is out of the cluster; its data re-heals on the live hosts"
