#!/usr/bin/env bash
# Stop serving the API VIP on this host (it leaves the control plane): Keepalived first, so
# the VIP moves to another control plane before HAProxy stops accepting connections.
set -euo pipefail
systemctl disable --now keepalived 2>/dev/null || true
systemctl disable --now haproxy 2>/dev/null || true
echo "API VIP frontend stopped on $(hostname -s)"
