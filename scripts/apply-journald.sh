#!/usr/bin/env bash
# Restart journald after its drop-in changed; print the effective storage setting.
# Env: REMOVE (optional): drop-ins of earlier releases, deleted first.
set -euo pipefail
for old in ${REMOVE:-}; do rm -f -- "$old"; done
systemctl restart systemd-journald
systemctl is-active --quiet systemd-journald
echo "journald restarted: $(systemd-analyze cat-config systemd/journald.conf | grep -E '^Storage=' | tail -n 1)"
