#!/usr/bin/env bash
# Least-privilege cephx users for ceph-csi (caps as ceph-csi v3.11 docs/capabilities.md,
# narrowed to our pools and filesystem), created or brought to these caps; then print
# their keys as one JSON object on stdout. The caller marks stdout secret and logs nothing;
# progress goes to stderr.
# Parameters: RBD_POOLS (space-separated) FS_NAME (may be empty: no CephFS users)
set -euo pipefail
: "${RBD_POOLS?}" "${FS_NAME?}"

rbd_osd=""
for pool in $RBD_POOLS; do
  rbd_osd+="${rbd_osd:+, }profile rbd pool=$pool"
done

# user|mon caps|mgr caps|osd caps|mds caps
users=()
if [[ -n "$rbd_osd" ]]; then
  users+=("csi-rbd-provisioner|profile rbd, allow command \"osd blocklist\"|allow rw|$rbd_osd|")
  users+=("csi-rbd-node|profile rbd||$rbd_osd|")
fi
if [[ -n "$FS_NAME" ]]; then
  users+=("csi-cephfs-provisioner|allow r, allow command \"osd blocklist\"|allow rw|allow rw tag cephfs metadata=$FS_NAME|")
  users+=("csi-cephfs-node|allow r|allow rw|allow rw tag cephfs *=$FS_NAME|allow rw fsname=$FS_NAME")
fi

for entry in "${users[@]}"; do
  IFS='|' read -r name mon mgr osd mds <<<"$entry"
  caps=(mon "$mon")
  [[ -n "$mgr" ]] && caps+=(mgr "$mgr")
  caps+=(osd "$osd")
  [[ -n "$mds" ]] && caps+=(mds "$mds")
  if ! ceph auth get "client.$name" >/dev/null 2>&1; then
    ceph auth get-or-create "client.$name" "${caps[@]}" >/dev/null
    echo "changed: client.$name created" >&2
  elif ! ceph auth get "client.$name" -f json | python3 -c '
import json, sys
have = json.load(sys.stdin)[0]["caps"]
want = dict(zip(sys.argv[1::2], sys.argv[2::2]))
sys.exit(have != want)' "${caps[@]}"; then
    ceph auth caps "client.$name" "${caps[@]}" >/dev/null
    echo "changed: client.$name caps" >&2
  fi
done

printf '{'
sep=""
for entry in "${users[@]}"; do
  name=${entry%%|*}
  printf '%s"%s": "%s"' "$sep" "$name" "$(ceph auth get-key "client.$name")"
  sep=", "
done
printf '}\n'
