#!/usr/bin/env bash
# Install the backup data movers (rclone comes from EPEL on CentOS Stream 9). Safe to re-run.
# Parameters: PACKAGES (space-separated)
set -euo pipefail
: "${PACKAGES:?}"
read -r -a packages <<<"$PACKAGES"
if ! rpm -q epel-release >/dev/null 2>&1; then
  dnf install -y -q epel-release </dev/null
fi
dnf install -y -q --setopt=install_weak_deps=False "${packages[@]}" </dev/null
echo "installed: ${packages[*]}"
