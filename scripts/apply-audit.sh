#!/usr/bin/env bash
# Compile /etc/audit/rules.d into the running ruleset (auditd refuses systemctl restart).
set -euo pipefail
systemctl enable --now auditd
augenrules --load
echo "audit rules loaded: $(auditctl -l | wc -l)"
