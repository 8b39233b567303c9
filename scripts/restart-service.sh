#!/usr/bin/env bash
# Enable and restart one systemd service after its configuration changed.
# Env: SERVICE.
set -euo pipefail
service="${SERVICE:?SERVICE is required}"
systemctl enable "$service" 2>/dev/null || true  # static units cannot be enabled
systemctl restart "$service"
systemctl is-active --quiet "$service"
echo "${service} restarted"
