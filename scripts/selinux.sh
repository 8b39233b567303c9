#!/usr/bin/env bash
# Set the SELinux mode now and across reboots.
# Env: SELINUX_MODE (enforcing | permissive).
set -euo pipefail
mode="${SELINUX_MODE:?SELINUX_MODE is required}"
sed -i -E "s/^SELINUX=.*/SELINUX=${mode}/" /etc/selinux/config
current="$(getenforce)"
if [[ "$current" == "Disabled" ]]; then
  # Leaving Disabled needs a relabel and a reboot; schedule the relabel, do not reboot here.
  touch /.autorelabel
  echo "SELinux is disabled; ${mode} takes effect after the next reboot (relabel scheduled)" >&2
else
  setenforce "$([[ "$mode" == enforcing ]] && echo 1 || echo 0)"
fi
echo "selinux: $(getenforce), configured ${mode}"
