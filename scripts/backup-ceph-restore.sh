#!/usr/bin/env bash
# Rebuild an RBD image from the exports seoul-backup-ceph wrote (fetched back from the vault):
# the newest full at or before UNTIL, then each of its increments up to UNTIL in name order.
# Installed as /usr/local/sbin/seoul-restore-ceph on the Ceph bootstrap host (admin keyring).
# Parameters: EXPORTS (folder of one image's seoul-*.{full,diff}.rbd) TARGET (pool/image, new)
#   UNTIL (optional: a snapshot name seoul-<UTC time>; default the newest export)
# The restored image ends with the snapshot it was restored to (TARGET@<that name>).
set -euo pipefail
: "${EXPORTS:?}" "${TARGET:?}"
UNTIL="${UNTIL:-}"
if rbd info "$TARGET" >/dev/null 2>&1; then
  echo "$TARGET exists: restore into a new image" >&2
  exit 2
fi

# The chain: names sort by time, and a full starts a new chain.
mapfile -t plan < <(python3 - "$EXPORTS" "$UNTIL" <<'EOF'
import sys
from pathlib import Path

folder, until = Path(sys.argv[1]), sys.argv[2]
exports = sorted(p for p in folder.glob("seoul-*.rbd") if not until or p.name.split(".")[0] <= until)
fulls = [i for i, p in enumerate(exports) if p.name.endswith(".full.rbd")]
if not fulls:
    sys.exit(f"no full export in {folder}" + (f" at or before {until}" if until else ""))
print(*exports[fulls[-1]:], sep="\n")
EOF
)
[[ ${#plan[@]} -gt 0 ]] || exit 2

full="${plan[0]}"
rbd import --no-progress "$full" "$TARGET"
# import-diff needs the increment's base snapshot on the target: the full's.
rbd snap create "$TARGET@$(basename "$full" .full.rbd)"
for diff in "${plan[@]:1}"; do
  rbd import-diff --no-progress "$diff" "$TARGET"
done
echo "restored $TARGET to $(basename "${plan[-1]}" | cut -d. -f1) from ${#plan[@]} exports"
