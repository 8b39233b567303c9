#!/usr/bin/env bash
# Snapshot the named RBD images and export them for the off-site copy: the first export of
# an image is full (`rbd export`), later ones are increments from the previous snapshot
# (`rbd export-diff --from-snap`); then ship the exports with seoul-backup-ship.
# Installed as /usr/local/sbin/seoul-backup-ceph on the Ceph bootstrap host (admin keyring).
# Parameters: IMAGES (space-separated pool/image) EXPORT_DIR KEEP_DAYS SHIP, plus the ship's.
# Restore: `rbd import` the .full.rbd, then `rbd import-diff` each .diff.rbd in name order.
set -euo pipefail
: "${IMAGES:?}" "${EXPORT_DIR:?}" "${KEEP_DAYS:?}" "${SHIP:?}"
read -r -a images <<<"$IMAGES"
umask 077
stamp="seoul-$(date -u +%Y%m%dT%H%M%SZ)"

for spec in "${images[@]}"; do
  dir="$EXPORT_DIR/$spec"
  mkdir -p "$dir"
  # The newest earlier snapshot of ours is the base of this increment.
  previous="$(rbd snap ls --format json "$spec" |
    python3 -c 'import json,sys; s=[x["name"] for x in json.load(sys.stdin) if x["name"].startswith("seoul-")]; print(max(s, default=""))')"
  rbd snap create "$spec@$stamp"
  if [[ -z "$previous" ]]; then
    out="$dir/$stamp.full.rbd"
    rbd export --no-progress "$spec@$stamp" "$out.part"
  else
    out="$dir/$stamp.diff.rbd"
    rbd export-diff --no-progress --from-snap "$previous" "$spec@$stamp" "$out.part"
    # Only the newest snapshot is needed as the next base.
    rbd snap rm --no-progress "$spec@$previous"
  fi
  mv "$out.part" "$out"
  echo "exported $out"
done

"$SHIP"
# Shipped copies are in the vault: keep a few days locally for quick restores.
find "$EXPORT_DIR" -name '*.rbd' -mtime +"$KEEP_DAYS" -delete
