#!/usr/bin/env bash
# Load changed systemd unit files and enable (and start) the given timers; optionally run
# some oneshot services once right away. Re-run when a unit file changes (FINGERPRINT).
# Parameters: TIMERS (space-separated) RUN_NOW (space-separated services, optional) FINGERPRINT
set -euo pipefail
: "${TIMERS:?}" "${FINGERPRINT:?}"
read -r -a timers <<<"$TIMERS"
read -r -a run_now <<<"${RUN_NOW:-}"

systemctl daemon-reload
systemctl enable --now "${timers[@]}"
for service in "${run_now[@]}"; do
  systemctl start "$service" || echo "warning: $service failed; see journalctl -u $service" >&2
done
echo "enabled: ${timers[*]}"
