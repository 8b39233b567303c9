#!/usr/bin/env bash
# Apply auditd.conf (SIGHUP: auditd re-reads it) and compile /etc/audit/rules.d into the
# running ruleset (auditd refuses systemctl restart). Once a `-e 2` ruleset is loaded the
# kernel refuses rule changes until reboot: the new rules are then compiled for the next
# boot and the step says so instead of failing.
# Env: REMOVE (optional): rule files to delete first (e.g. the immutable rule at level 1).
set -euo pipefail
for old in ${REMOVE:-}; do rm -f -- "$old"; done
systemctl enable --now auditd
kill -HUP "$(cat /run/auditd.pid)"
if auditctl -s | grep -qx 'enabled 2'; then
  augenrules
  echo "audit rules are immutable until reboot: new rules compiled into /etc/audit/audit.rules for the next boot" >&2
else
  augenrules --load
fi
echo "audit rules loaded: $(auditctl -l | wc -l)"
