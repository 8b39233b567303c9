#!/usr/bin/env bash
# Load the modules listed in modules-load.d and apply every sysctl.d file.
# sysctl.d is applied by systemd-sysctl, exactly as at boot (files by name, the last value
# winning), so the running values are the ones a reboot gives. procps' `sysctl --system`
# would apply /etc/sysctl.conf after every drop-in, letting an image's value there win.
# modprobe.d's `install <m> /bin/false` lines act on the next load; a module already
# loaded stays until reboot (unloading a filesystem in use could break a mount).
# Env: REMOVE (optional): files of earlier releases, deleted first.
set -euo pipefail
for old in ${REMOVE:-}; do rm -f -- "$old"; done
if [[ -f /etc/modules-load.d/kubernetes.conf ]]; then
  grep -Ev '^\s*(#|$)' /etc/modules-load.d/kubernetes.conf | xargs -r -n1 modprobe
fi
/usr/lib/systemd/systemd-sysctl
echo "kernel settings applied: ip_forward=$(sysctl -n net.ipv4.ip_forward) rp_filter=$(sysctl -n net.ipv4.conf.all.rp_filter)"
