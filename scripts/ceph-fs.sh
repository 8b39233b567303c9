#!/usr/bin/env bash
# The CephFS volume on its two pools and the subvolume group ceph-csi provisions into.
# Safe to run twice. MDS daemons come from the orchestrator's mds spec (ceph-spec.sh).
# Parameters: FS_NAME METADATA_POOL DATA_POOL STANDBY_COUNT SUBVOLUME_GROUP
set -euo pipefail
: "${FS_NAME:?}" "${METADATA_POOL:?}" "${DATA_POOL:?}" "${STANDBY_COUNT:?}" "${SUBVOLUME_GROUP:?}"

if ! ceph fs ls | grep -q "^name: $FS_NAME,"; then
  ceph fs new "$FS_NAME" "$METADATA_POOL" "$DATA_POOL"
  echo "changed: filesystem $FS_NAME (metadata $METADATA_POOL, data $DATA_POOL)"
fi
if [[ "$(ceph fs get "$FS_NAME" | awk '$1 == "standby_count_wanted" {print $2}')" != "$STANDBY_COUNT" ]]; then
  ceph fs set "$FS_NAME" standby_count_wanted "$STANDBY_COUNT"
  echo "changed: $FS_NAME standby_count_wanted $STANDBY_COUNT"
fi
if ! ceph fs subvolumegroup ls "$FS_NAME" | grep -q "\"name\": \"$SUBVOLUME_GROUP\""; then
  ceph fs subvolumegroup create "$FS_NAME" "$SUBVOLUME_GROUP"
  echo "changed: subvolume group $FS_NAME/$SUBVOLUME_GROUP"
fi
ceph fs ls | grep "^name: $FS_NAME,"
