#!/usr/bin/env bash
# Take a storage host out of the cluster without losing redundancy: refuse when the hosts
# left could not hold a pool (fewer than its min_size, or fewer than k+m for an EC pool),
# else drain it (`ceph orch host drain`), wait until its OSDs are gone, remove its OSD spec
# and the host. CHECK_ONLY=true stops after the check.
# Parameters: HOST FAILURE_DOMAIN DRAIN_TIMEOUT_SECONDS [CHECK_ONLY]
set -euo pipefail
: "${HOST:?}" "${FAILURE_DOMAIN:?}" "${DRAIN_TIMEOUT_SECONDS:?}"

# Domains (hosts) holding OSDs, minus this one; then every pool against that count.
ceph osd tree --format json >/tmp/ceph-tree.$$
ceph osd pool ls detail --format json >/tmp/ceph-pools.$$
trap 'rm -f /tmp/ceph-tree.$$ /tmp/ceph-pools.$$' EXIT
profiles=$(for p in $(ceph osd erasure-code-profile ls); do
  printf '%s %s\n' "$p" "$(ceph osd erasure-code-profile get "$p" | tr '\n' ' ')"; done)
python3 - "$HOST" "$FAILURE_DOMAIN" /tmp/ceph-tree.$$ /tmp/ceph-pools.$$ <<PY
import json, sys
host, domain, tree_file, pools_file = sys.argv[1:5]
tree = json.load(open(tree_file))
profiles = {}
for line in """$profiles""".splitlines():
    name, *kvs = line.split()
    profiles[name] = dict(kv.split("=", 1) for kv in kvs if "=" in kv)
if domain == "host":
    left = [n for n in tree["nodes"] if n["type"] == "host" and n.get("children") and n["name"] != host]
else:  # failure domain osd (a one-host test cluster): the OSDs not on this host
    gone = {c for n in tree["nodes"] if n["type"] == "host" and n["name"] == host for c in n.get("children", [])}
    left = [n for n in tree["nodes"] if n["type"] == "osd" and n["id"] not in gone]
bad = []
for pool in json.load(open(pools_file)):
    if pool.get("erasure_code_profile") and pool.get("type") == 3:
        p = profiles.get(pool["erasure_code_profile"], {})
        need = int(p.get("k", 0)) + int(p.get("m", 0))
        if need > len(left):
            bad.append(f"{pool['pool_name']}: erasure-coded k+m={need} cannot place its chunks on {len(left)} {domain}s")
    elif pool["min_size"] > len(left):
        bad.append(f"{pool['pool_name']}: min_size {pool['min_size']} is above the {len(left)} {domain}s left")
if bad:
    print(f"refusing to remove {host}:", *bad, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"{host} can go: {len(left)} {domain}s left hold every pool")
PY
if [[ "${CHECK_ONLY:-false}" == true ]]; then
  exit 0
fi

ceph orch host drain "$HOST"
deadline=$((SECONDS + DRAIN_TIMEOUT_SECONDS))
while ceph orch ps "$HOST" --daemon_type osd --format json | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin))'; do
  if ((SECONDS >= deadline)); then
    echo "$HOST still has OSDs after ${DRAIN_TIMEOUT_SECONDS}s; its data is still moving (ceph orch osd rm status)" >&2
    exit 1
  fi
  ceph orch osd rm status || true
  sleep 60
done
ceph orch rm "osd.$HOST" 2>/dev/null || true
ceph orch host rm "$HOST"
echo "changed: $HOST drained and removed"
