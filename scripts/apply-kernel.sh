#!/usr/bin/env bash
# Load the modules listed in modules-load.d and apply every sysctl.d file.
set -euo pipefail
if [[ -f /etc/modules-load.d/kubernetes.conf ]]; then
  grep -Ev '^\s*(#|$)' /etc/modules-load.d/kubernetes.conf | xargs -r -n1 modprobe
fi
sysctl --system >/dev/null
echo "kernel settings applied"
