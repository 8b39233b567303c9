#!/usr/bin/env bash
# Print the admin kubeconfig of the first control plane (the caller marks stdout secret and
# logs nothing). It names the API by the control-plane endpoint (the VIP).
set -euo pipefail
cat /etc/kubernetes/admin.conf
