#!/usr/bin/env bash
# Snapshot the named RBD images and export them for the off-site copy. Each image has a
# chain: a full export (`rbd export`) then increments from the previous snapshot
# (`rbd export-diff --from-snap`); every FULL_EVERY runs (daily: days) a new chain starts
# with a full, so a restore needs one full and at most FULL_EVERY-1 increments. Then the
# exports are shipped with seoul-backup-ship, and local chains older than KEEP_DAYS are
# pruned whole (never a full whose increments are kept). An image that fails is reported and
# skipped: the others are still shipped, then the run exits 1 without recording success.
# Installed as /usr/local/sbin/seoul-backup-ceph on the Ceph bootstrap host (admin keyring).
# Parameters: IMAGES (space-separated pool/image) EXPORT_DIR KEEP_DAYS FULL_EVERY SHIP, plus the ship's.
# Restore: seoul-restore-ceph (scripts/backup-ceph-restore.sh).
set -euo pipefail
: "${IMAGES:?}" "${EXPORT_DIR:?}" "${KEEP_DAYS:?}" "${FULL_EVERY:?}" "${SHIP:?}"
[[ "$FULL_EVERY" =~ ^[1-9][0-9]*$ ]] || { echo "FULL_EVERY must be a positive whole number" >&2; exit 2; }
read -r -a images <<<"$IMAGES"
umask 077
stamp="seoul-$(date -u +%Y%m%dT%H%M%SZ)"

# One image's run; called in a subshell under set -e, so its first failing command ends it.
export_image() {
  local spec="$1"
  local dir="$EXPORT_DIR/$spec" chain listing ours older previous links out snap
  # The snapshots of the current chain, oldest (the full's) first; local state, never shipped.
  chain="$dir/chain"
  listing="$(rbd snap ls --format json "$spec")"  # apart: a missing image stops here, not in python
  ours="$(printf '%s' "$listing" |
    python3 -c 'import json,sys; print(*sorted(x["name"] for x in json.load(sys.stdin) if x["name"].startswith("seoul-")))')"
  read -r -a older <<<"$ours"
  mkdir -p "$dir"
  previous=""
  [[ ${#older[@]} -gt 0 ]] && previous="${older[-1]}"
  links=0
  [[ -s "$chain" ]] && links="$(wc -l <"$chain")"
  rbd snap create "$spec@$stamp"
  # An increment only from the snapshot the chain ends at: after a failed run, a lost
  # export folder or a full chain, start a new one.
  if [[ -n "$previous" && "$links" -gt 0 && "$links" -lt "$FULL_EVERY" && "$(tail -n 1 "$chain")" == "$previous" ]]; then
    out="$dir/$stamp.diff.rbd"
    rbd export-diff --no-progress --from-snap "$previous" "$spec@$stamp" "$out.part"
    mv "$out.part" "$out"
    cp "$chain" "$chain.new"
    echo "$stamp" >>"$chain.new"
  else
    out="$dir/$stamp.full.rbd"
    rbd export --no-progress "$spec@$stamp" "$out.part"
    mv "$out.part" "$out"
    echo "$stamp" >"$chain.new"
  fi
  mv "$chain.new" "$chain"
  # Only the newest snapshot is needed as the next base.
  for snap in "${older[@]}"; do
    rbd snap rm --no-progress "$spec@$snap"
  done
  echo "exported $out"
}

failed=()
for spec in "${images[@]}"; do
  # set +e around the subshell: under `if` or `||` bash would ignore set -e inside it too.
  set +e
  (set -e; export_image "$spec")
  status=$?
  set -e
  if [[ $status -ne 0 ]]; then
    echo "backup-ceph: $spec failed (exit $status), skipped" >&2
    failed+=("$spec")
  fi
done

if [[ ${#failed[@]} -eq 0 ]]; then
  "$SHIP"
else
  # Ship what was exported, but the success time must not cover the failed images: it
  # stays as it was (a first run exports only the period), so the freshness alerts fire.
  RECORD_SUCCESS=0 "$SHIP"
fi

# Shipped copies are in the vault: keep whole chains locally for quick restores, dropping
# a chain once its newest export is older than KEEP_DAYS (the current chain always stays).
python3 - "$EXPORT_DIR" "$KEEP_DAYS" <<'EOF'
import sys
import time
from pathlib import Path

root, cutoff = Path(sys.argv[1]), time.time() - int(sys.argv[2]) * 86400
for image in sorted({p.parent for p in root.rglob("seoul-*.rbd")}):
    chains: list[list[Path]] = []
    for export in sorted(image.glob("seoul-*.rbd")):
        if export.name.endswith(".full.rbd") or not chains:
            chains.append([])
        chains[-1].append(export)
    for old in chains[:-1]:
        if max(p.stat().st_mtime for p in old) < cutoff:
            for p in old:
                p.unlink()
                print(f"pruned {p}")
for part in root.rglob("*.part"):  # left by a failed run
    if part.stat().st_mtime < cutoff:
        part.unlink()
EOF

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "backup-ceph: ${#failed[@]} of ${#images[@]} images failed: ${failed[*]}" >&2
  exit 1
fi
