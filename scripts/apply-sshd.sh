#!/usr/bin/env bash
# Check the whole sshd configuration before reloading, so a bad drop-in never
# locks the operators out: sshd keeps running with the old configuration.
set -euo pipefail
sshd -t
systemctl reload sshd
echo "sshd reloaded"
