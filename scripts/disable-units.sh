#!/usr/bin/env bash
# Stop and disable the given timers (the delete of an enable-units step), before their unit
# files are removed, so nothing fires on a host that no longer has the role.
# Parameters: TIMERS (space-separated) FINGERPRINT (unused here)
set -euo pipefail
: "${TIMERS:?}"
read -r -a timers <<<"$TIMERS"

for timer in "${timers[@]}"; do
  systemctl disable --now "$timer" 2>/dev/null || true
done
systemctl daemon-reload
echo "disabled: ${timers[*]}"
