#!/usr/bin/env bash
# Check the whole sshd configuration before reloading, so a bad drop-in never
# locks the operators out: sshd keeps running with the old configuration.
# Env: REMOVE (optional): drop-ins of earlier releases, deleted first.
set -euo pipefail
for old in ${REMOVE:-}; do rm -f -- "$old"; done
sshd -t
systemctl reload sshd
echo "sshd reloaded: passwordauthentication $(sshd -T -C user=root,host=localhost,addr=127.0.0.1 | awk '$1 == "passwordauthentication" { print $2 }')"
