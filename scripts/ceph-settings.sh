#!/usr/bin/env bash
# Cluster-wide settings: PG autoscaler on, balancer in upmap mode, full ratios, OSD memory
# target, mgr modules. Safe to run twice: only differences are applied, each printed "changed: ...".
# Parameters: NEARFULL_RATIO BACKFILLFULL_RATIO FULL_RATIO OSD_MEMORY_TARGET (bytes)
#   MGR_MODULES (space-separated, may be empty)
set -euo pipefail
: "${NEARFULL_RATIO:?}" "${BACKFILLFULL_RATIO:?}" "${FULL_RATIO:?}" "${OSD_MEMORY_TARGET:?}"
MGR_MODULES=${MGR_MODULES:-}

# config_set SECTION KEY VALUE [READ_AS]: `ceph config get` needs a daemon type, not `global`.
config_set() {
  if [[ "$(ceph config get "${4:-$1}" "$2")" != "$3" ]]; then
    ceph config set "$1" "$2" "$3"
    echo "changed: config $1 $2 $3"
  fi
}

config_set global osd_pool_default_pg_autoscale_mode on mon
config_set osd osd_memory_target "$OSD_MEMORY_TARGET"

# Ratios live in the OSD map; awk compares them as numbers (0.9 == 0.90).
dump=$(ceph osd dump)
for pair in "nearfull $NEARFULL_RATIO" "backfillfull $BACKFILLFULL_RATIO" "full $FULL_RATIO"; do
  read -r kind want <<<"$pair"
  have=$(awk -v k="${kind}_ratio" '$1 == k {print $2}' <<<"$dump")
  if ! awk -v a="$have" -v b="$want" 'BEGIN {exit !(a + 0 == b + 0)}'; then
    ceph osd "set-${kind}-ratio" "$want"
    echo "changed: ${kind}_ratio $want"
  fi
done

# upmap needs every client to speak luminous or newer.
if ! grep -Eq '^require_min_compat_client (luminous|mimic|nautilus|octopus|pacific|quincy|reef|squid)' <<<"$dump"; then
  ceph osd set-require-min-compat-client luminous
  echo "changed: require_min_compat_client luminous"
fi
status=$(ceph balancer status)
if ! grep -q '"mode": "upmap"' <<<"$status"; then
  ceph balancer mode upmap
  echo "changed: balancer mode upmap"
fi
if ! grep -q '"active": true' <<<"$status"; then
  ceph balancer on
  echo "changed: balancer on"
fi

enabled=$(ceph mgr module ls)
for module in $MGR_MODULES; do
  if ! python3 -c 'import json, sys; m = json.load(sys.stdin); sys.exit(sys.argv[1] not in m["enabled_modules"] + m.get("always_on_modules", []))' "$module" <<<"$enabled"; then
    ceph mgr module enable "$module"
    echo "changed: mgr module $module"
  fi
done
echo "settings: $(grep -E '_ratio' <<<"$dump" | tr '\n' ' ')"
