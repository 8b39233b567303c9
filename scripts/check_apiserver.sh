#!/usr/bin/env bash
# Keepalived health check (run as `nobody` every 3s): this host may hold the API VIP only
# while its HAProxy runs and its own kube-apiserver answers /healthz. A failure lowers the
# host's VRRP priority (weight) so a healthy control plane takes the VIP.
# Usage: check_apiserver.sh <apiserver-port>
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin
port="${1:?usage: check_apiserver.sh <apiserver-port>}"

if ! systemctl is-active --quiet haproxy; then
  echo "haproxy is not running" >&2
  exit 1
fi
if ! curl --silent --fail --insecure --max-time 2 --output /dev/null "https://127.0.0.1:${port}/healthz"; then
  echo "kube-apiserver on 127.0.0.1:${port} is not healthy" >&2
  exit 1
fi
