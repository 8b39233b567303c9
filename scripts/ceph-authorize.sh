#!/usr/bin/env bash
# Let cephadm in as the deploy user: add its public key to the user's authorized_keys
# (once; other keys untouched). Parameters: SSH_USER KEY_FILE (holds the public key)
set -euo pipefail
: "${SSH_USER:?}" "${KEY_FILE:?}"

CEPH_PUBKEY=$(head -n 1 "$KEY_FILE")
if [[ ! "$CEPH_PUBKEY" =~ ^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp[0-9]+)\  ]]; then
  echo "$KEY_FILE holds no SSH public key" >&2
  exit 1
fi

home=$(getent passwd "$SSH_USER" | cut -d: -f6)
keys="$home/.ssh/authorized_keys"
install -d -m 0700 -o "$SSH_USER" -g "$SSH_USER" "$home/.ssh"
touch "$keys"
if ! grep -qxF "$CEPH_PUBKEY" "$keys"; then
  printf '%s\n' "$CEPH_PUBKEY" >>"$keys"
  echo "changed: cephadm key authorized for $SSH_USER"
fi
chown "$SSH_USER:" "$keys"
chmod 0600 "$keys"
restorecon -F "$home/.ssh" "$keys" 2>/dev/null || true
