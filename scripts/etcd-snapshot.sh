#!/usr/bin/env bash
# Hourly etcd snapshot into SNAPSHOT_DIR, verified, keeping the newest SNAPSHOT_KEEP.
# Installed as /usr/local/sbin/seoul-etcd-snapshot; run by etcd-snapshot.timer.
# Parameters (from the unit): MEMBER (the inventory name, in the file name) SNAPSHOT_DIR
# SNAPSHOT_KEEP CA_CERT CERT KEY ENDPOINT BIN_DIR
set -euo pipefail
: "${MEMBER:?}" "${SNAPSHOT_DIR:?}" "${SNAPSHOT_KEEP:?}" "${CA_CERT:?}" "${CERT:?}" "${KEY:?}" "${ENDPOINT:?}"
: "${BIN_DIR:?}"

umask 077
name="etcd-$MEMBER-$(date -u +%Y%m%dT%H%M%SZ).db"
partial="$SNAPSHOT_DIR/.$name.part"
trap 'rm -f "$partial"' EXIT
ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
  --endpoints "$ENDPOINT" --command-timeout=300s snapshot save "$partial" >/dev/null
"$BIN_DIR/etcdutl" snapshot status "$partial" -w simple >/dev/null
mv "$partial" "$SNAPSHOT_DIR/$name"
echo "saved $SNAPSHOT_DIR/$name"

find "$SNAPSHOT_DIR" -maxdepth 1 -name 'etcd-*.db' -printf '%T@ %p\n' | sort -rn |
  tail -n +$((SNAPSHOT_KEEP + 1)) | cut -d' ' -f2- | xargs -r rm -f --
